//! Running scripts against a test `Env`: control flow, operators, calls, formatting.
use super::tests::{build, table, TestEnv};
use super::*;

fn run(src: &str, env: &mut TestEnv) -> Outcome {
    let s = build(src);
    let Some(main) = s.main_route() else {
        panic!("no main route")
    };
    s.run(main, env)
}

fn message() -> TestEnv {
    let mut env = TestEnv::with(&[
        ("$si", Value::str("1.2.3.4")),
        ("$sp", Value::Int(5060)),
        ("$rm", Value::str("INVITE")),
        ("$ru", Value::str("sip:alice@example.com")),
        ("$Ri", Value::str("1.2.3.4")),
        ("$hdr(X-Num)", Value::str("42")),
        ("$hdr(X-Re)", Value::str("^INV")),
        ("$socket_in(port)", Value::Int(8080)),
    ]);
    env.myself = vec!["sip:alice@example.com", "1.2.3.4"];
    env
}

#[test]
fn if_else_chains() {
    let src = "route {
        if ($sp == 1) xlog(\"one\");
        else if ($sp == 5060) { xlog(\"5060\"); }
        else if ($sp == 5060) xlog(\"again\");
        else xlog(\"other\");
        if ($rm == \"BYE\") xlog(\"bye\"); else xlog(\"not bye\");
        if ($rm == \"BYE\") xlog(\"no else\");
    }";
    let mut env = message();
    assert_eq!(run(src, &mut env), Outcome::Return(1));
    assert_eq!(env.log_texts(), ["5060", "not bye"]);
}

#[test]
fn operators() {
    let cases: &[(&str, bool)] = &[
        ("$sp == 5060", true),
        ("$sp == \"5060\"", true),
        ("\"5060\" == $sp", true),
        ("$sp != 5060", false),
        ("$sp < 6000", true),
        ("6000 > $sp", true),
        ("$sp > \"6000\"", false),
        ("$sp <= 5060 && $sp >= 5060", true),
        ("$hdr(X-Num) == 42", true),
        ("$hdr(X-Num) >= 43", false),
        ("$hdr(X-Num) == \"abc\"", false),
        ("$sp == \"abc\"", false),
        ("$sp != \"abc\"", true),
        ("$sp < \"abc\"", false),
        ("$rm == \"invite\"", true),
        ("$rm != \"INVITE\"", false),
        ("$rm < \"REGISTER\"", true),
        ("$rm > \"ack\"", true),
        ("$rm =~ \"^inv\"", true),
        ("$rm !~ \"^inv\"", false),
        ("$ru =~ \"@example\\.com$\"", true),
        ("$sp =~ \"^50\"", true),
        ("$rm =~ $hdr(X-Re)", true),
        ("$rm !~ $hdr(X-Re)", false),
        ("$ua == NULL", true),
        ("$ua != NULL", false),
        ("$ua == \"\"", false),
        ("$ua != \"x\"", true),
        ("$ua < 1", false),
        ("$ua =~ \".*\"", false),
        ("$ua !~ \".*\"", true),
        ("!$ua", true),
        ("!$si", false),
        ("$si", true),
        ("$si == $Ri", true),
        ("$si != $Ri", false),
        ("$si == $ru", false),
        ("$si + \":\" + $sp == \"1.2.3.4:5060\"", true),
        ("$sp + 1 == 5061", true),
        ("$sp - 60 == 5000", true),
        ("$socket_in(port) == 8080", true),
        ("$si == myself", true),
        ("myself == $ru", true),
        ("$hdr(X-Num) == myself", false),
        ("$hdr(X-Num) != myself", true),
        ("!($sp == 5060) || $rm == \"INVITE\"", true),
        ("!($sp == 5060 || $rm == \"INVITE\")", false),
        ("1 && \"\"", false),
        ("\"abc\" == \"ABC\"", true),
    ];
    for (expr, want) in cases {
        let src = format!("route {{ if ({expr}) return(1); return(-1); }}");
        let mut env = message();
        let got = run(&src, &mut env);
        assert_eq!(got, Outcome::Return(if *want { 1 } else { -1 }), "{expr}");
    }
}

#[test]
fn short_circuit_skips_calls() {
    let (_, f, _) = table();
    let mut env = message();
    env.rets.insert(f, -1);
    let out = run("route { if (f(\"a\") && f(\"b\")) exit; if (is_method(\"INVITE\") || f(\"c\")) xlog(\"ok\"); }", &mut env);
    assert_eq!(out, Outcome::Return(1));
    assert_eq!(env.called(f), [vec![Value::str("a")]]);
    assert_eq!(env.log_texts(), ["ok"]);
    let mut env = message();
    run(
        "route { if (is_method(\"INVITE\") && f(\"d\")) exit; }",
        &mut env,
    );
    assert_eq!(env.called(f), [vec![Value::str("d")]]);
}

const NESTED: &str = "
route { route(a); xlog(\"after a: $rc\"); route(b); xlog(\"after b\"); }
route[a] { if ($sp == 5060) { return(7); } xlog(\"not here\"); }
route[b] { route(c); xlog(\"after c\"); }
route[c] { xlog(\"in c\"); END; xlog(\"after END\"); }
";

#[test]
fn exit_drop_return_in_nested_routes() {
    let mut env = message();
    assert_eq!(run(&NESTED.replace("END", "exit"), &mut env), Outcome::Exit);
    assert_eq!(env.log_texts(), ["after a: 7", "in c"]);
    let mut env = message();
    assert_eq!(run(&NESTED.replace("END", "drop"), &mut env), Outcome::Drop);
    assert_eq!(env.log_texts(), ["after a: 7", "in c"]);
    let mut env = message();
    assert_eq!(
        run(&NESTED.replace("END", "return(-3)"), &mut env),
        Outcome::Return(1)
    );
    assert_eq!(
        env.log_texts(),
        ["after a: 7", "in c", "after c", "after b"]
    );
    let mut env = message();
    assert_eq!(
        run("route { route(x); return($rc); } route[x] { }", &mut env),
        Outcome::Return(1)
    );
    assert_eq!(
        run("route { return(5); xlog(\"no\"); }", &mut env),
        Outcome::Return(5)
    );
    assert_eq!(run("route { return -2; }", &mut env), Outcome::Return(-2));
    assert_eq!(run("route { return; }", &mut env), Outcome::Return(1));
    assert_eq!(run("route { }", &mut env), Outcome::Return(1));
    assert!(env.logs.is_empty());
}

#[test]
fn zero_means_exit() {
    let (_, f, _) = table();
    let mut env = message();
    // return(0) in a sub-route ends the whole script, as in OpenSIPS.
    assert_eq!(
        run(
            "route { route(z); xlog(\"no\"); } route[z] { return(0); }",
            &mut env
        ),
        Outcome::Exit
    );
    env.rets.insert(f, 0);
    assert_eq!(run("route { f(); xlog(\"no\"); }", &mut env), Outcome::Exit);
    assert_eq!(
        run("route { if (f()) xlog(\"no\"); xlog(\"no\"); }", &mut env),
        Outcome::Exit
    );
    assert!(env.logs.is_empty());
    env.rets.insert(f, -5);
    assert_eq!(
        run("route { f(); return($rc); }", &mut env),
        Outcome::Return(-5)
    );
    assert_eq!(
        run("route { if (!f()) return($retcode); }", &mut env),
        Outcome::Return(-5)
    );
}

#[test]
fn is_method_list() {
    let cases = [
        ("INVITE|REGISTER", 1),
        ("BYE|ACK", -1),
        ("invite", 1),
        (" BYE | INVITE ", 1),
    ];
    for (list, want) in cases {
        let mut env = message();
        let src = format!("route {{ if (is_method(\"{list}\")) return(1); return(-1); }}");
        assert_eq!(run(&src, &mut env), Outcome::Return(want), "{list}");
    }
    let mut env = TestEnv::default();
    assert_eq!(
        run(
            "route { if (is_method(\"INVITE\")) return(1); return(-1); }",
            &mut env
        ),
        Outcome::Return(-1)
    );
}

#[test]
fn xlog_formatting() {
    let mut env = message();
    let src = r#"route {
        $var(x) = "v";
        xlog("L_INFO", "$rm from $si:$sp [$ua] $var(x) $hdr(X-Num)\n");
        xlog("plain \$si \"q\"\ttab");
        xlog(L_DBG, $sp);
        xlog("L_ALERT", "$socket_in(port)$var(nope)");
    }"#;
    assert_eq!(run(src, &mut env), Outcome::Return(1));
    assert_eq!(
        env.logs,
        [
            (
                LogLevel::Info,
                "INVITE from 1.2.3.4:5060 [<null>] v 42".to_owned()
            ),
            (LogLevel::Err, "plain $si \"q\"\ttab".to_owned()),
            (LogLevel::Dbg, "5060".to_owned()),
            (LogLevel::Alert, "8080<null>".to_owned()),
        ]
    );
}

#[test]
fn assignments() {
    let mut env = message();
    let src = r#"route {
        $var(a) = $si;
        $var(b) = $var(a) + "x";
        $ru = "sip:" + $var(b);
        $du = $var(missing);
        $var(n) = $sp + 1;
        $rU = $var(n);
        $var(a) = 5;
        if ($var(a) == 5 && $var(b) == "1.2.3.4X") xlog("vars ok");
        $var(b) = NULL;
        if ($var(b) == NULL) xlog("cleared");
    }"#;
    assert_eq!(run(src, &mut env), Outcome::Return(1));
    assert_eq!(
        env.sets,
        [
            ("$ru".to_owned(), Value::str("sip:1.2.3.4x")),
            ("$du".to_owned(), Value::Null),
            ("$rU".to_owned(), Value::Int(5061)),
        ]
    );
    assert_eq!(env.log_texts(), ["vars ok", "cleared"]);
    let mut env = message();
    env.refuse_set = true;
    assert_eq!(
        run(
            "route {\n  $du = \"sip:x\";\n  xlog(\"next\");\n}",
            &mut env
        ),
        Outcome::Return(1)
    );
    assert_eq!(
        env.log_texts(),
        ["s.cfg:2: cannot assign to $du: not now", "next"]
    );
}

#[test]
fn variables_reset_between_runs() {
    let s = build(
        "route { if ($var(seen) == 1) return(2); $var(seen) = 1; $var(s) = \"text\"; return(1); }",
    );
    let Some(main) = s.main_route() else { panic!() };
    let mut state = RunState::new();
    let mut env = message();
    assert_eq!(s.run_with(&mut state, main, &mut env), Outcome::Return(1));
    assert_eq!(s.run_with(&mut state, main, &mut env), Outcome::Return(1));
    assert_eq!(s.run(main, &mut env), Outcome::Return(1));
}

#[test]
fn host_function_arguments() {
    let (_, f, rec) = table();
    let mut env = message();
    let src = r#"route {
        rec("str", 42, $si, "fmt $rm", $sp);
        rec(word, "404", $hdr(X-Num), 7, -3);
        rec("s", $hdr(X-Num));
        rec("s", $ua, $ua, $ua, $ua);
        sl_send_reply("404", "Not $rm");
        $var(c) = 486;
        sl_send_reply($var(c), "Busy");
        forward();
        forward("sip:$si:5080");
        t_relay();
        f(L_ERR, "x");
    }"#;
    assert_eq!(run(src, &mut env), Outcome::Return(1));
    assert_eq!(
        env.called(rec),
        [
            vec![
                Value::str("str"),
                Value::Int(42),
                Value::str("1.2.3.4"),
                Value::str("fmt INVITE"),
                Value::Int(5060)
            ],
            vec![
                Value::str("word"),
                Value::Int(404),
                Value::str("42"),
                Value::str("7"),
                Value::Int(-3)
            ],
            vec![Value::str("s"), Value::Int(42)],
            vec![
                Value::str("s"),
                Value::Null,
                Value::Null,
                Value::str("<null>"),
                Value::Null
            ],
        ]
    );
    assert_eq!(
        env.called(FuncId::SL_SEND_REPLY),
        [
            vec![Value::Int(404), Value::str("Not INVITE")],
            vec![Value::Int(486), Value::str("Busy")]
        ]
    );
    assert_eq!(
        env.called(FuncId::FORWARD),
        [vec![], vec![Value::str("sip:1.2.3.4:5080")]]
    );
    assert_eq!(env.called(FuncId::T_RELAY), [Vec::<Value<'static>>::new()]);
    assert_eq!(env.called(f), [vec![Value::str("L_ERR"), Value::str("x")]]);
}

fn chain(n: usize) -> String {
    let mut src = String::from("route { route(r1); xlog(\"done\"); }\n");
    for i in 1..n {
        src.push_str(&format!("route[r{i}] {{ route(r{}); }}\n", i + 1));
    }
    src.push_str(&format!("route[r{n}] {{ xlog(\"deepest\"); }}\n"));
    src
}

#[test]
fn recursion_limit() {
    // Top route + 99 nested calls = depth 100: allowed.
    let mut env = message();
    assert_eq!(run(&chain(99), &mut env), Outcome::Return(1));
    assert_eq!(env.log_texts(), ["deepest", "done"]);
    // One more is refused: logged and treated as drop.
    let mut env = message();
    assert_eq!(run(&chain(100), &mut env), Outcome::Drop);
    assert_eq!(
        env.log_texts(),
        ["s.cfg:100: route(r100): too many nested route() calls (limit 100), dropping the message"]
    );
    let mut env = message();
    assert_eq!(
        run("route { route(l); }\nroute[l] { route(l); }", &mut env),
        Outcome::Drop
    );
    assert_eq!(env.logs.len(), 1);
}

#[test]
fn constant_folding() {
    let mut env = message();
    assert_eq!(
        run("route { if (\"a\" == \"A\") exit; drop; }", &mut env),
        Outcome::Exit
    );
    assert_eq!(
        run(
            "route { if (0) exit; else if (1 + 1 == 2) drop; }",
            &mut env
        ),
        Outcome::Drop
    );
    assert_eq!(
        run("route { if (\"abc\" =~ \"B\") return(3); }", &mut env),
        Outcome::Return(3)
    );
    // `false && x` never evaluates x.
    let (_, f, _) = table();
    assert_eq!(
        run(
            "route { if (0 && f()) exit; if (1 || f()) return(4); }",
            &mut env
        ),
        Outcome::Return(4)
    );
    assert!(env.called(f).is_empty());
}

#[test]
fn deep_nesting_runs() {
    // The parser's nesting limit is also safe for compilation and execution.
    let depth = 95;
    let src = format!(
        "route {{ {} xlog(\"in\"); {} }}",
        "if ($sp == 5060) {".repeat(depth),
        "}".repeat(depth)
    );
    let mut env = message();
    assert_eq!(run(&src, &mut env), Outcome::Return(1));
    assert_eq!(env.log_texts(), ["in"]);
    let mut src = String::from("route { ");
    for i in 0..2000 {
        src.push_str(&format!("if ($sp == {i}) xlog(\"{i}\"); else "));
    }
    src.push_str("xlog(\"none\"); }");
    let mut env = message();
    assert_eq!(run(&src, &mut env), Outcome::Return(1));
    assert_eq!(env.log_texts(), ["none"]);
}

#[test]
fn xlog_trailing_newline_is_not_part_of_the_record() {
    // OpenSIPS's usual `xlog("...\n")`: one record, one line (issue 10, item 18).
    let mut env = message();
    run(
        "route { xlog(\"L_INFO\", \"$rm from $si\\n\"); xlog(\"two\\r\\n\\n\"); xlog(\"a\\nb\"); }",
        &mut env,
    );
    assert_eq!(env.log_texts(), ["INVITE from 1.2.3.4", "two", "a\nb"]);
}

/// Output arguments (`ArgKind::OutPv`): the function gets `Null` there, and what it gives
/// back is stored, in a `$var` from the next statement or branch on, elsewhere at once.
#[test]
fn output_arguments() {
    let mut env = message();
    env.outputs.insert(2, "decoded".into());
    env.outputs.insert(3, "alice".into());
    let src = r#"route {
        $var(u) = "before";
        if (jwt_script_authorize("$hdr(X-Num)", "k", $var(d), $var(u))) {
            xlog("L_INFO", "d=$var(d) u=$var(u)");
        }
        jwt_script_authorize("t", "k", $var(d), $du);
        xlog("L_INFO", "d=$var(d) u=$var(u)");
    }"#;
    run(src, &mut env);
    assert_eq!(
        env.log_texts(),
        ["d=decoded u=alice", "d=decoded u=alice"],
        "the second call gave nothing back: unchanged"
    );
    let calls = env.called(FuncId::JWT_SCRIPT_AUTHORIZE);
    assert_eq!(
        calls[0],
        [Value::str("42"), Value::str("k"), Value::Null, Value::Null]
    );
    let mut env = message();
    env.outputs.insert(3, "sip:x@y".into());
    run(
        r#"route { jwt_script_authorize("t", "k", $var(d), $du); }"#,
        &mut env,
    );
    assert_eq!(env.sets, [("$du".to_string(), Value::str("sip:x@y"))]);
}
