//! Compilation: resolution, argument checks, spans of compile errors; plus the test `Env`.
use super::*;
use crate::config::{parse_str, ErrorKind};
use std::borrow::Cow;
use std::collections::HashMap;

/// A message for tests: pseudo-variables by their printed name (`$si`, `$hdr(Via)`).
#[derive(Default)]
pub(super) struct TestEnv {
    pub pvs: HashMap<String, Value<'static>>,
    pub calls: Vec<(FuncId, Vec<Value<'static>>)>,
    pub rets: HashMap<FuncId, i64>,
    pub logs: Vec<(LogLevel, String)>,
    pub sets: Vec<(String, Value<'static>)>,
    pub myself: Vec<&'static str>,
    pub refuse_set: bool,
    /// What the next calls store in their output arguments, by position.
    pub outputs: HashMap<usize, String>,
}

impl TestEnv {
    pub fn with(pvs: &[(&str, Value<'static>)]) -> Self {
        TestEnv {
            pvs: pvs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    pub fn called(&self, f: FuncId) -> Vec<Vec<Value<'static>>> {
        self.calls
            .iter()
            .filter(|c| c.0 == f)
            .map(|c| c.1.clone())
            .collect()
    }

    pub fn log_texts(&self) -> Vec<&str> {
        self.logs.iter().map(|l| l.1.as_str()).collect()
    }
}

impl Env for TestEnv {
    fn pv_get(&mut self, pv: &Pv) -> Value<'_> {
        match self.pvs.get(&pv.to_string()) {
            Some(Value::Str(s)) => Value::Str(Cow::Borrowed(s)),
            Some(v) => v.clone(),
            None => Value::Null,
        }
    }

    fn pv_set(&mut self, pv: &Pv, v: Value<'_>) -> Result<(), String> {
        if self.refuse_set {
            return Err("not now".into());
        }
        self.sets.push((pv.to_string(), v.clone().into_owned()));
        self.pvs.insert(pv.to_string(), v.into_owned());
        Ok(())
    }

    fn call(&mut self, f: FuncId, args: &[Value<'_>]) -> i64 {
        self.calls
            .push((f, args.iter().map(|a| a.clone().into_owned()).collect()));
        self.rets.get(&f).copied().unwrap_or(1)
    }

    fn take_output(&mut self, index: usize) -> Option<String> {
        self.outputs.remove(&index)
    }

    fn log(&mut self, level: LogLevel, text: &str) {
        self.logs.push((level, text.to_owned()));
    }

    fn is_myself(&mut self, v: &Value<'_>) -> bool {
        v.as_str().is_some_and(|s| self.myself.contains(&s))
    }
}

/// Test functions: `f(any*)`, `rec(str, int, pv, format, intorstr)` with 0 required.
pub(super) fn table() -> (FunctionTable, FuncId, FuncId) {
    let mut t = FunctionTable::with_core();
    let any = [ArgKind::IntOrStr; 4];
    let f = t.register("f", &any, 0).unwrap_or(FuncId(999));
    let kinds = [
        ArgKind::Str,
        ArgKind::Int,
        ArgKind::Pv,
        ArgKind::Format,
        ArgKind::IntOrStr,
    ];
    let rec = t.register("rec", &kinds, 0).unwrap_or(FuncId(999));
    (t, f, rec)
}

pub(super) fn build(src: &str) -> Script {
    let cfg = parse_str(src, "s.cfg").unwrap_or_else(|e| panic!("parse error:\n{e}"));
    compile(&cfg, &table().0).unwrap_or_else(|e| panic!("compile error:\n{e}"))
}

fn compile_err(src: &str) -> crate::config::ConfigError {
    let cfg = parse_str(src, "s.cfg").unwrap_or_else(|e| panic!("parse error:\n{e}"));
    match compile(&cfg, &table().0) {
        Ok(_) => panic!("compiled: {src}"),
        Err(e) => e,
    }
}

fn check(src: &str, line: u32, col: u32, kind: ErrorKind) {
    let e = compile_err(src);
    assert_eq!(
        (e.line, e.col, &e.kind),
        (line, col, &kind),
        "for {src:?}:\n{e}"
    );
}

#[test]
fn unknown_function_with_caret() {
    let e = compile_err("route {\n    foo(1);\n}");
    assert_eq!(
        e.to_string(),
        "s.cfg:2:5: unknown function 'foo'\n    foo(1);\n    ^"
    );
    // Even in a branch a constant condition removes.
    check(
        "route { if (0) { bar(); } }",
        1,
        18,
        ErrorKind::UnknownFunction("bar".into()),
    );
    check(
        "route { if (is_method(\"A\") && nope()) exit; }",
        1,
        31,
        ErrorKind::UnknownFunction("nope".into()),
    );
}

#[test]
fn argument_counts() {
    let count = |func: &str, expected: &str, got| ErrorKind::ArgCount {
        func: func.into(),
        expected: expected.into(),
        got,
    };
    check(
        "route { sl_send_reply(404); }",
        1,
        9,
        count("sl_send_reply", "2", 1),
    );
    check("route { xlog(); }", 1, 9, count("xlog", "1 or 2", 0));
    check(
        "route { xlog(L_ERR, \"a\", \"b\"); }",
        1,
        9,
        count("xlog", "1 or 2", 3),
    );
    check("route { t_relay(1); }", 1, 9, count("t_relay", "0", 1));
    check("route { f(1, 2, 3, 4, 5); }", 1, 9, count("f", "0 to 4", 5));
    check("route { is_method; }", 1, 9, count("is_method", "1", 0));
}

#[test]
fn argument_kinds() {
    let kind = |func: &str, index, expected| ErrorKind::ArgKind {
        func: func.into(),
        index,
        expected,
    };
    check(
        "route { sl_send_reply(\"abc\", \"x\"); }",
        1,
        23,
        kind("sl_send_reply", 1, "an integer or a pseudo-variable"),
    );
    check("route { rec(1); }", 1, 13, kind("rec", 1, "a string"));
    check(
        "route { rec(\"s\", 1, \"x\"); }",
        1,
        21,
        kind("rec", 3, "a pseudo-variable"),
    );
    check(
        "route { rec(\"s\", 1, $si, L_ERR); }",
        1,
        26,
        kind("rec", 4, "a string or a pseudo-variable"),
    );
    check(
        "route { is_method(\"INVITE||BYE\"); }",
        1,
        19,
        kind("is_method", 1, "a method list like \"INVITE|REGISTER\""),
    );
    check(
        "route { xlog(L_FOO, \"x\"); }",
        1,
        14,
        ErrorKind::BadLogLevel("L_FOO".into()),
    );
    check(
        "route { xlog(\"L_ERR\", 5); xlog(3, \"x\"); }",
        1,
        32,
        ErrorKind::BadLogLevel("3".into()),
    );
}

#[test]
fn unknown_route() {
    check(
        "route {\n  route(relay);\n}\nroute[rely] { exit; }",
        2,
        9,
        ErrorKind::UnknownRoute("relay".into()),
    );
    // route() names request routes only.
    check(
        "route { route(f1); }\nfailure_route[f1] { exit; }",
        1,
        15,
        ErrorKind::UnknownRoute("f1".into()),
    );
}

#[test]
fn pseudo_variable_errors() {
    check(
        "route { if ($foo == 1) exit; }",
        1,
        13,
        ErrorKind::UnknownPv("foo".into()),
    );
    let bad = |pv: &str, reason: &str| ErrorKind::BadPvArg {
        pv: pv.into(),
        reason: reason.into(),
    };
    check(
        "route { if ($socket_in(foo) == 1) exit; }",
        1,
        24,
        bad(
            "socket_in",
            "expected ip, port, proto, advertised_ip, advertised_port, tag, anycast or af",
        ),
    );
    check(
        "route { if ($hdr(Bad Name)) exit; }",
        1,
        18,
        bad("hdr", "header name is not a valid token"),
    );
    check(
        "route { if ($hdr) exit; }",
        1,
        13,
        bad("hdr", "missing header name, e.g. $hdr(Max-Forwards)"),
    );
    check(
        "route { if ($si(x)) exit; }",
        1,
        17,
        bad("si", "takes no argument"),
    );
    check(
        "route { $var(a-b) = 1; }",
        1,
        14,
        bad("var", "variable names are letters, digits and '_'"),
    );
    check(
        "route { $si = \"x\"; }",
        1,
        9,
        ErrorKind::ReadOnlyPv("si".into()),
    );
    // An output argument must be writable, and a pseudo-variable.
    check(
        "route { jwt_script_authorize(\"t\", \"k\", $si); }",
        1,
        40,
        ErrorKind::ReadOnlyPv("si".into()),
    );
    check(
        "route { jwt_script_authorize(\"t\", \"k\", \"x\"); }",
        1,
        40,
        ErrorKind::ArgKind {
            func: "jwt_script_authorize".into(),
            index: 3,
            expected: "a writable pseudo-variable, e.g. $var(name)",
        },
    );
    // Inside a format string the position is that of the `$` in the file.
    check(
        "route { xlog(\"x $bar y\"); }",
        1,
        17,
        ErrorKind::UnknownPv("bar".into()),
    );
    check(
        "route { xlog(\"x\n  $hdr(\"); }",
        2,
        7,
        ErrorKind::UnterminatedPv,
    );
    check(
        "route { xlog(\"cost: $ 5\"); }",
        1,
        21,
        ErrorKind::BadPvName,
    );
}

#[test]
fn regex_and_operand_errors() {
    check(
        "route { if ($ru =~ \"(abc\") exit; }",
        1,
        20,
        ErrorKind::BadRegex("unclosed group".into()),
    );
    check(
        "route { if ($ru !~ \"a{2,1}\") exit; }",
        1,
        20,
        ErrorKind::BadRegex("invalid repetition count range, the start must be <= the end".into()),
    );
    let myself = ErrorKind::BadOperand("'myself' can only be compared with '==' or '!='".into());
    check("route { if (myself) exit; }", 1, 13, myself.clone());
    check("route { if ($ru < myself) exit; }", 1, 17, myself.clone());
    check("route { if (myself == myself) exit; }", 1, 23, myself);
}

#[test]
fn resolution_results() {
    let cfg = parse_str(
        "route { $var(a) = 1; $var(b) = $var(a); xlog(\"$var(b) $hdr(v) $socket_in(port)\"); }",
        "s.cfg",
    );
    let Ok(cfg) = cfg else { panic!() };
    let Ok(script) = compile(&cfg, &FunctionTable::with_core()) else {
        panic!()
    };
    assert_eq!(script.var_names(), [Box::from("a"), Box::from("b")]);
    let Ok(h) = HeaderName::parse("v") else {
        panic!()
    };
    assert_eq!((h.as_str(), h.known()), ("Via", Some(KnownHeader::Via)));
    assert!(h.matches("VIA") && h.matches("v") && h.matches("V") && !h.matches("Vias"));
    let Ok(h) = HeaderName::parse("X-Custom") else {
        panic!()
    };
    assert_eq!((h.as_str(), h.known()), ("X-Custom", None));
    assert!(h.matches("x-custom") && !h.matches("x"));
    assert_eq!(
        Pv::SocketIn(SocketField::AdvertisedPort).to_string(),
        "$socket_in(advertised_port)"
    );
    assert_eq!(Pv::Hdr(h).to_string(), "$hdr(X-Custom)");
}

#[test]
fn route_lookup() {
    let s = build(
        "route { exit; }\nroute[a] { exit; }\nonreply_route { exit; }\nonreply_route[r] { exit; }\n\
         failure_route[f] { exit; }\nstartup_route { exit; }",
    );
    assert_eq!(s.main_route(), Some(RouteRef(0)));
    assert_eq!(s.route_by_name("a"), Some(RouteRef(1)));
    assert_eq!(s.route_by_name("f"), None);
    assert_eq!(s.onreply_route(None), Some(RouteRef(2)));
    assert_eq!(s.onreply_route(Some("r")), Some(RouteRef(3)));
    assert_eq!(s.failure_route("f"), Some(RouteRef(4)));
    assert_eq!(s.startup_route(), Some(RouteRef(5)));
    assert_eq!(
        s.route_info(RouteRef(3)),
        Some((RouteKind::OnReply, Some("r")))
    );
    assert_eq!(build("route[x] { exit; }").main_route(), None);
}

#[test]
fn function_table_registration() {
    let mut t = FunctionTable::with_core();
    assert_eq!(t.lookup("xlog"), Some(FuncId::XLOG));
    assert_eq!(t.lookup("t_relay"), Some(FuncId::T_RELAY));
    assert_eq!(t.name(FuncId::SL_SEND_REPLY), Some("sl_send_reply"));
    assert_eq!(t.lookup("lookup"), Some(FuncId::LOOKUP));
    assert_eq!(t.lookup("is_present_hf"), Some(FuncId::IS_PRESENT_HF));
    assert_eq!(t.lookup("www_authorize"), Some(FuncId::WWW_AUTHORIZE));
    assert_eq!(
        t.lookup("consume_credentials"),
        Some(FuncId::CONSUME_CREDENTIALS)
    );
    assert_eq!(t.lookup("check_to"), Some(FuncId::CHECK_TO));
    // The next id after the last core function.
    assert_eq!(
        t.register("my_func", &[ArgKind::Str], 1),
        Ok(FuncId(FuncId::NAT_UAC_TEST.0 + 1))
    );
    assert_eq!(
        t.register("lookup", &[], 0),
        Err(RegisterError::Duplicate("lookup".into()))
    );
    assert_eq!(
        t.register("route", &[], 0),
        Err(RegisterError::BadName("route".into()))
    );
    assert_eq!(
        t.register("a-b", &[], 0),
        Err(RegisterError::BadName("a-b".into()))
    );
    assert_eq!(
        t.register("g", &[ArgKind::Str], 2),
        Err(RegisterError::BadMinArgs {
            name: "g".into(),
            min: 2,
            max: 1
        })
    );
}
