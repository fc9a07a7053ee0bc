//! Parsing of well-formed configuration files.
use super::*;

const REALISTIC: &str = r#"#
# sipcore test configuration
#
log_level = 3          # info
log_stderror=yes
workers = 4
mpath = "/usr/lib/sipcore/modules/"
server_header = "Server: sipcore \"test\""
log_facility = LOG_LOCAL0
debug_mode = off
tos = -1;

socket = udp:127.0.0.1:5060
socket=ws:[::1]:8080 as 1.2.3.4:80 # c
listen = hep_udp:10.0.0.1:9060   use_workers 2
/* a block
   comment */
loadmodule "proto_ws.so"
loadmodule "proto_hep.so";
modparam("proto_ws", "ws_port", 8080)
modparam("proto_hep", "hep_id", "[hep_dest] 10.0.0.2:9060;transport=udp")
modparam("proto_ws", "ws_send_timeout", -100);

route {
    if ($si == "1.2.3.4") exit;
    if (is_method("INVITE|REGISTER") && $hdr(Max-Forwards) < 10) {
        sl_send_reply(483, "Too Many Hops");
        exit;
    } else if (!is_method("ACK")) {
        route(relay);
    } else {
        drop;
    }
    xlog("L_INFO", "$rm from $si:$sp # not a comment\n");  // trailing
    $var(x) = "a" + 1;
    return(-2);
}

route[relay] {
    if ($ru =~ "^sip:.*@example\.com$" || uri == myself) { t_relay(); }
    return;
}

route["quoted name"] { exit; }
onreply_route { xlog("reply $rs\n"); }
onreply_route[r1] { return(1); }
failure_route[f1] { drop; }
startup_route { xlog("L_NOTICE", "started"); }
"#;

fn parse(src: &str) -> Config {
    match parse_str(src, "test.cfg") {
        Ok(c) => c,
        Err(e) => panic!("unexpected error:\n{e}"),
    }
}

#[test]
fn realistic_items_in_order() {
    let cfg = parse(REALISTIC);
    let items: Vec<String> = cfg
        .items
        .iter()
        .map(|it| match it {
            Item::Global { name, value, .. } => format!("G {name}={value:?}"),
            Item::Socket { text, .. } => format!("S {text}"),
            Item::LoadModule { path, .. } => format!("L {path}"),
            Item::ModParam {
                module,
                param,
                value,
                ..
            } => format!("M {module}.{param}={value:?}"),
        })
        .collect();
    assert_eq!(
        items,
        [
            "G log_level=Int(3)",
            "G log_stderror=Int(1)",
            "G workers=Int(4)",
            "G mpath=Str(\"/usr/lib/sipcore/modules/\")",
            "G server_header=Str(\"Server: sipcore \\\"test\\\"\")",
            "G log_facility=Word(\"LOG_LOCAL0\")",
            "G debug_mode=Int(0)",
            "G tos=Int(-1)",
            "S udp:127.0.0.1:5060",
            "S ws:[::1]:8080 as 1.2.3.4:80",
            "S hep_udp:10.0.0.1:9060   use_workers 2",
            "L proto_ws.so",
            "L proto_hep.so",
            "M proto_ws.ws_port=Int(8080)",
            "M proto_hep.hep_id=Str(\"[hep_dest] 10.0.0.2:9060;transport=udp\")",
            "M proto_ws.ws_send_timeout=Int(-100)",
        ]
    );
}

#[test]
fn spans_and_positions() {
    let cfg = parse(REALISTIC);
    let ws = cfg.sockets().nth(1).map(|(t, s)| (t.to_owned(), s));
    let Some((text, span)) = ws else {
        panic!("no second socket")
    };
    assert_eq!(text, "ws:[::1]:8080 as 1.2.3.4:80");
    assert_eq!(cfg.text(span), "ws:[::1]:8080 as 1.2.3.4:80");
    // `socket=ws:...` is line 14; the value starts at column 8.
    assert_eq!(cfg.position(span), (14, 8));
    let Some(Item::ModParam {
        span,
        param_span,
        value_span,
        ..
    }) = cfg.items.get(13)
    else {
        panic!("item 13 is not a modparam")
    };
    assert_eq!(cfg.position(*span), (20, 1));
    assert_eq!(cfg.text(*param_span), "\"ws_port\"");
    assert_eq!(cfg.position(*value_span), (20, 33));
    let Some(Item::ModParam { value_span, .. }) = cfg.items.get(15) else {
        panic!("no modparam")
    };
    assert_eq!(cfg.text(*value_span), "-100");
    assert_eq!(
        cfg.global("workers").map(|g| g.0),
        Some(&GlobalValue::Int(4))
    );
    let Some((_, vspan)) = cfg.global("workers") else {
        panic!()
    };
    assert_eq!(cfg.position(vspan), (6, 11));
}

#[test]
fn error_at_renders_host_errors() {
    let cfg = parse(REALISTIC);
    let Some(Item::ModParam { param_span, .. }) = cfg.items.get(13) else {
        panic!()
    };
    let e = cfg.error_at(
        *param_span,
        "unknown parameter 'ws_port' of module 'proto_ws'",
    );
    assert_eq!(
        e.to_string(),
        "test.cfg:20:22: unknown parameter 'ws_port' of module 'proto_ws'\n\
         modparam(\"proto_ws\", \"ws_port\", 8080)\n                     ^"
    );
}

#[test]
fn routes_kinds_and_names() {
    let cfg = parse(REALISTIC);
    let routes: Vec<(RouteKind, Option<&str>)> = cfg
        .routes
        .iter()
        .map(|r| (r.kind, r.name.as_deref()))
        .collect();
    assert_eq!(
        routes,
        [
            (RouteKind::Request, None),
            (RouteKind::Request, Some("relay")),
            (RouteKind::Request, Some("quoted name")),
            (RouteKind::OnReply, None),
            (RouteKind::OnReply, Some("r1")),
            (RouteKind::Failure, Some("f1")),
            (RouteKind::Startup, None),
        ]
    );
    let main = cfg.route(RouteKind::Request, None).map(|r| r.body.len());
    assert_eq!(main, Some(5));
}

#[test]
fn statements_shape() {
    let cfg = parse(REALISTIC);
    let Some(main) = cfg.route(RouteKind::Request, None) else {
        panic!()
    };
    // if ($si == "1.2.3.4") exit;
    let Some(Stmt::If {
        cond,
        then,
        els: None,
        ..
    }) = main.body.first()
    else {
        panic!("{:?}", main.body[0])
    };
    let Expr::Binary {
        op: BinOp::Eq,
        lhs,
        rhs,
        ..
    } = cond
    else {
        panic!("{cond:?}")
    };
    assert!(matches!(&**lhs, Expr::Pv(PvRef { name, arg: None, .. }) if name == "si"));
    assert!(matches!(&**rhs, Expr::Str(s) if s.value() == "1.2.3.4"));
    assert!(matches!(**then, Stmt::Exit(_)));
    // the if / else if / else chain
    let Some(Stmt::If { els: Some(els), .. }) = main.body.get(1) else {
        panic!()
    };
    let Stmt::If {
        cond: Expr::Not(..),
        els: Some(last),
        ..
    } = &**els
    else {
        panic!("{els:?}")
    };
    assert!(matches!(&**last, Stmt::Block(b, _) if matches!(b[..], [Stmt::Drop(_)])));
    // xlog with a quoted level and a '#' inside the string
    let Some(Stmt::Call(Call { name, args, .. })) = main.body.get(2) else {
        panic!()
    };
    assert_eq!(name, "xlog");
    assert!(matches!(&args[1], Arg::Str(s) if s.value() == "$rm from $si:$sp # not a comment\n"));
    // $var(x) = "a" + 1;
    let Some(Stmt::Assign {
        pv,
        value: Expr::Binary { op: BinOp::Add, .. },
        ..
    }) = main.body.get(3)
    else {
        panic!()
    };
    assert_eq!((pv.name.as_str(), pv.arg.as_deref()), ("var", Some("x")));
    // return(-2);
    assert!(matches!(
        main.body.get(4),
        Some(Stmt::Return(Some(Expr::Int(-2, _)), _))
    ));
}

#[test]
fn precedence() {
    let cfg = parse("route { if (!$a == 1 || $b < 2 && $c != \"x\") exit; }");
    let Some(Stmt::If { cond, .. }) = cfg.routes[0].body.first() else {
        panic!()
    };
    // ((!$a) == 1) || (($b < 2) && ($c != "x"))
    let Expr::Binary {
        op: BinOp::Or,
        lhs,
        rhs,
        ..
    } = cond
    else {
        panic!("{cond:?}")
    };
    let Expr::Binary {
        op: BinOp::Eq,
        lhs: not,
        ..
    } = &**lhs
    else {
        panic!("{lhs:?}")
    };
    assert!(matches!(&**not, Expr::Not(..)));
    let Expr::Binary {
        op: BinOp::And,
        lhs: lt,
        rhs: ne,
        ..
    } = &**rhs
    else {
        panic!("{rhs:?}")
    };
    assert!(matches!(&**lt, Expr::Binary { op: BinOp::Lt, .. }));
    assert!(matches!(&**ne, Expr::Binary { op: BinOp::Ne, .. }));
}

#[test]
fn pseudo_variable_forms() {
    let cfg = parse(
        "route { f($hdr(Max-Forwards), $socket_in(port), $(var(x)), $(ru), -5, L_ERR); g; h(); }",
    );
    let Some(Stmt::Call(c)) = cfg.routes[0].body.first() else {
        panic!()
    };
    let pvs: Vec<(&str, Option<&str>)> = c
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Pv(p) => Some((p.name.as_str(), p.arg.as_deref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        pvs,
        [
            ("hdr", Some("Max-Forwards")),
            ("socket_in", Some("port")),
            ("var", Some("x")),
            ("ru", None)
        ]
    );
    assert!(matches!(c.args[4], Arg::Int(-5, _)));
    assert!(matches!(&c.args[5], Arg::Word(w, _) if w == "L_ERR"));
    let Some(Arg::Pv(hdr)) = c.args.first() else {
        panic!()
    };
    assert_eq!(cfg.text(hdr.span), "$hdr(Max-Forwards)");
    assert_eq!(hdr.arg_span.map(|s| cfg.text(s)), Some("Max-Forwards"));
    assert!(
        matches!(&cfg.routes[0].body[1], Stmt::Call(Call { name, args, .. }) if name == "g" && args.is_empty())
    );
    assert!(
        matches!(&cfg.routes[0].body[2], Stmt::Call(Call { name, args, .. }) if name == "h" && args.is_empty())
    );
}

#[test]
fn comments_everywhere() {
    let src = "a = 1 // x\n/* y */ b = \"#no\" # z\nroute { # c\n exit; /* d */ }\n// end";
    let cfg = parse(src);
    assert_eq!(
        cfg.global("a").map(|g| g.0.clone()),
        Some(GlobalValue::Int(1))
    );
    assert_eq!(
        cfg.global("b").map(|g| g.0.clone()),
        Some(GlobalValue::Str("#no".into()))
    );
    assert_eq!(cfg.routes[0].body, [Stmt::Exit(Span::new(46, 50))]);
}

#[test]
fn socket_keeps_quoted_hash_and_crlf() {
    let cfg = parse("socket = udp:\"h#x\":5060 # real comment\r\nlisten=tcp:1.2.3.4\r\n");
    let socks: Vec<&str> = cfg.sockets().map(|s| s.0).collect();
    assert_eq!(socks, ["udp:\"h#x\":5060", "tcp:1.2.3.4"]);
}

#[test]
fn string_escapes() {
    assert_eq!(unescape(r#"a\nb\t\\\"\'"#), "a\nb\t\\\"'");
    // Unknown escapes keep the backslash (regexes like "\." survive).
    assert_eq!(unescape(r"\.\d"), r"\.\d");
    assert!(matches!(
        unescape("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
}

#[test]
fn load_file_reads_and_reports_io() {
    let dir = std::env::temp_dir().join(format!("sipcore-cfg-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("ok.cfg");
    let _ = std::fs::write(&path, "workers = 2\nroute { exit; }\n");
    let cfg = load_file(&path);
    assert!(matches!(&cfg, Ok(c) if c.routes.len() == 1 && c.file() == path.display().to_string()));
    let missing = dir.join("missing.cfg");
    let Err(e) = load_file(&missing) else {
        panic!("missing file loaded")
    };
    assert!(matches!(e.kind, ErrorKind::Io(_)));
    assert_eq!((e.line, e.col), (0, 0));
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read file: ", missing.display())));
    let _ = std::fs::remove_dir_all(&dir);
}
