//! Every lexical and syntax error names its exact line and column.
use super::*;

fn err(src: &str) -> ConfigError {
    match parse_str(src, "t.cfg") {
        Ok(c) => panic!("parsed without error: {:?}", c.items),
        Err(e) => e,
    }
}

/// Assert position and kind of the error `src` gives.
fn check(src: &str, line: u32, col: u32, kind: ErrorKind) {
    let e = err(src);
    assert_eq!(
        (e.line, e.col, &e.kind),
        (line, col, &kind),
        "for source {src:?}:\n{e}"
    );
}

fn expected(expected: &str, found: &str) -> ErrorKind {
    ErrorKind::Expected {
        expected: expected.into(),
        found: found.into(),
    }
}

#[test]
fn display_has_position_line_and_caret() {
    let e = err("route {\n  xlog(\"abc);\n}\n");
    assert_eq!(
        e.to_string(),
        "t.cfg:2:8: unterminated string\n  xlog(\"abc);\n       ^"
    );
}

#[test]
fn caret_follows_tabs() {
    let e = err("route {\n\t\texit\n}");
    assert_eq!(
        e.to_string(),
        "t.cfg:3:1: expected ';' after 'exit', found '}'\n}\n^"
    );
    let e = err("route {\n\t\tfoo(@);\n}");
    assert_eq!(
        e.to_string(),
        "t.cfg:2:7: unexpected character '@'\n\t\tfoo(@);\n\t\t    ^"
    );
}

#[test]
fn lexical_errors() {
    check(
        "route {\n  xlog(\"abc);\n}\n",
        2,
        8,
        ErrorKind::UnterminatedString,
    );
    check("a = 1\n  /* open\n", 2, 3, ErrorKind::UnterminatedComment);
    check(
        "route { return(12ab); }",
        1,
        16,
        ErrorKind::BadNumber("12ab".into()),
    );
    check(
        "route { return(99999999999999999999); }",
        1,
        16,
        ErrorKind::BadNumber("99999999999999999999".into()),
    );
    check("route { @ }", 1, 9, ErrorKind::UnexpectedChar('@'));
    check(
        "route { if ($a & $b) exit; }",
        1,
        16,
        ErrorKind::UnexpectedChar('&'),
    );
    check("route {\n $hdr(Via = 1; }", 2, 6, ErrorKind::UnterminatedPv);
    check("route { $(ru = 1; }", 1, 10, ErrorKind::UnterminatedPv);
    check("route { $ = 1; }", 1, 9, ErrorKind::BadPvName);
    check("route { $1 = 1; }", 1, 9, ErrorKind::BadPvName);
    check(
        "route { xlog(\"é\"); é }",
        1,
        20,
        ErrorKind::UnexpectedChar('é'),
    );
}

#[test]
fn statement_errors() {
    check(
        "route {\n  exit\n}",
        3,
        1,
        expected("';' after 'exit'", "'}'"),
    );
    check(
        "route { drop exit; }",
        1,
        14,
        expected("';' after 'drop'", "'exit'"),
    );
    check(
        "route {\n  t_relay()\n  exit;\n}",
        3,
        3,
        expected("';' after the call to 't_relay'", "'exit'"),
    );
    check(
        "route { return 1 }",
        1,
        18,
        expected("';' after 'return'", "'}'"),
    );
    check(
        "route { route(x) }",
        1,
        18,
        expected("';' after 'route(x)'", "'}'"),
    );
    check(
        "route { route x; }",
        1,
        15,
        expected("'(' after 'route'", "'x'"),
    );
    check("route { 42; }", 1, 9, expected("a statement", "'42'"));
    check(
        "route { \"s\"; }",
        1,
        9,
        expected("a statement", "string \"s\""),
    );
    check(
        "route { $var(x) == 1; }",
        1,
        17,
        expected("'=' after '$var(x)'", "'=='"),
    );
    check(
        "route { $var(x) = ; }",
        1,
        19,
        expected(
            "an operand (string, number, pseudo-variable, function call or 'myself')",
            "';'",
        ),
    );
    check("route { else exit; }", 1, 9, ErrorKind::ElseWithoutIf);
    check(
        "route { switch ($rm) { } }",
        1,
        9,
        ErrorKind::Unsupported("switch".into()),
    );
    check(
        "route { while (1) { } }",
        1,
        9,
        ErrorKind::Unsupported("while".into()),
    );
    check(
        "route { exit;",
        1,
        14,
        expected("'}' to close the block", "end of file"),
    );
}

#[test]
fn expression_errors() {
    check(
        "route { if $a exit; }",
        1,
        12,
        expected("'(' after 'if'", "'$a'"),
    );
    check(
        "route { if ($a exit; }",
        1,
        16,
        expected("')' to close the 'if' condition", "'exit'"),
    );
    check(
        "route { if (($a) exit; }",
        1,
        18,
        expected("')' to close the 'if' condition", "'exit'"),
    );
    check(
        "route { if ((1) exit; }",
        1,
        17,
        expected("')' to close the 'if' condition", "'exit'"),
    );
    check(
        "route { if ((1 exit; }",
        1,
        16,
        expected("')' to close '('", "'exit'"),
    );
    check(
        "route { if ($a == ) exit; }",
        1,
        19,
        expected(
            "an operand (string, number, pseudo-variable, function call or 'myself')",
            "')'",
        ),
    );
    check(
        "route { if (- $a) exit; }",
        1,
        15,
        expected("a number after '-'", "'$a'"),
    );
    check(
        "route { f(1 2); }",
        1,
        13,
        expected("',' or ')' in the arguments of 'f'", "'2'"),
    );
    check(
        "route { f(,); }",
        1,
        11,
        expected(
            "a string, number, pseudo-variable or name as argument of 'f'",
            "','",
        ),
    );
    check(
        "route { f(-x); }",
        1,
        12,
        expected("a number after '-' in the arguments of 'f'", "'x'"),
    );
}

#[test]
fn top_level_errors() {
    check(
        "{",
        1,
        1,
        expected(
            "a global parameter, 'loadmodule', 'modparam' or a route block",
            "'{'",
        ),
    );
    check("workers 4", 1, 9, expected("'=' after 'workers'", "'4'"));
    check(
        "workers =\nroute{}",
        1,
        10,
        ErrorKind::MissingValue("workers".into()),
    );
    check(
        "workers = # nothing\n",
        1,
        11,
        ErrorKind::MissingValue("workers".into()),
    );
    check(
        "socket=   # only a comment\n",
        1,
        11,
        ErrorKind::MissingValue("socket".into()),
    );
    check(
        "socket udp:1.2.3.4",
        1,
        8,
        expected("'=' after 'socket'", "'udp'"),
    );
    check(
        "loadmodule proto_ws.so",
        1,
        12,
        expected("a quoted module file name after 'loadmodule'", "'proto_ws'"),
    );
    check(
        "modparam(\"a\", \"b\")",
        1,
        18,
        expected("',' after the parameter name in 'modparam'", "')'"),
    );
    check(
        "modparam(\"a\" \"b\", 1)",
        1,
        14,
        expected("',' after the module name in 'modparam'", "string \"b\""),
    );
    check(
        "modparam(a, \"b\", 1)",
        1,
        10,
        expected("a quoted module name in 'modparam'", "'a'"),
    );
    check(
        "modparam(\"a\", \"b\", $x)",
        1,
        20,
        expected("a string or number as 'modparam' value", "'$x'"),
    );
    check(
        "modparam(\"a\", \"b\", - \"x\")",
        1,
        22,
        expected("a number after '-' in 'modparam'", "string \"x\""),
    );
    check(
        "modparam(\"a\", \"b\", 1",
        1,
        21,
        expected("')' to close 'modparam'", "end of file"),
    );
    check(
        "route[x {}",
        1,
        9,
        expected("']' after the route name", "'{'"),
    );
    check(
        "route[] {}",
        1,
        7,
        expected("a route name after 'route['", "']'"),
    );
    check(
        "failure_route[f] exit;",
        1,
        18,
        expected("'{' to open the failure_route block", "'exit'"),
    );
    check(
        "timer_route[t, 10] {}",
        1,
        1,
        ErrorKind::Unsupported("timer_route".into()),
    );
}

#[test]
fn duplicate_routes() {
    check(
        "route[a] { exit; }\n\nroute[a] { drop; }",
        3,
        1,
        ErrorKind::DuplicateRoute {
            route: "route[a]".into(),
            line: 1,
            col: 1,
        },
    );
    check(
        "route { exit; }\n  route { drop; }",
        2,
        3,
        ErrorKind::DuplicateRoute {
            route: "route".into(),
            line: 1,
            col: 1,
        },
    );
    // Same name, different kinds: allowed.
    assert!(parse_str(
        "route[a] {}\nfailure_route[a] {}\nonreply_route[a] {}",
        "t.cfg"
    )
    .is_ok());
}

#[test]
fn nesting_is_bounded() {
    let src = format!("route {{ {} }}", "{".repeat(1000));
    let e = err(&src);
    assert_eq!(e.kind, ErrorKind::Limit("nested blocks or expressions"));
    let src = format!("route {{ if ({}1) exit; }}", "(".repeat(1000));
    assert_eq!(
        err(&src).kind,
        ErrorKind::Limit("nested blocks or expressions")
    );
}

/// Found by the `config` fuzz target: a file ending in a lone CR put the column of an
/// end-of-file error one past the line quoted under it.
#[test]
fn column_at_end_of_file_after_a_lone_cr() {
    let e = err("\rM\r\r\r\r");
    assert_eq!((e.line, e.col), (1, 6), "{e:?}");
    assert_eq!(e.source_line, "\rM\r\r\r");
    check("M\r", 1, 2, expected("'=' after 'M'", "end of file"));
}
