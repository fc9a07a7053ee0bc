//! Issue 2: bad configurations and bad modules stop startup with a clear message (file:line:col
//! for config errors, the file and the reason for module errors), and a panic inside a plugin
//! never unwinds across the ABI (clean exit code, no abort).
mod common;
use common::*;

const HEAD: &str =
    "mpath = \"{MPATH}\"\nsocket = ws:127.0.0.1:{PORT}\nloadmodule \"proto_ws.so\"\n";

fn expect_error(cfg: &str, needles: &[&str]) -> String {
    let (status, err, path) = run_to_exit(cfg, "bad.cfg");
    assert!(!status.success(), "must fail:\n{err}");
    assert_eq!(
        status.code(),
        Some(1),
        "clean exit code, not a signal: {status:?}\n{err}"
    );
    for n in needles {
        let n = n.replace("{CFG}", &path.display().to_string());
        assert!(err.contains(&n), "stderr lacks {n:?}:\n{err}");
    }
    err
}

#[test]
fn syntax_error_names_file_line_col() {
    // Line 5: `    if ($si == "1.2.3.4" { exit; }` - the ')' is missing before '{' at column 26.
    let cfg = format!("{HEAD}route {{\n    if ($si == \"1.2.3.4\" {{ exit; }}\n}}\n");
    expect_error(&cfg, &["{CFG}:5:26:"]);
}

#[test]
fn unterminated_string_names_its_start() {
    let cfg = format!("{HEAD}route {{\n  xlog(\"oops);\n}}\n");
    expect_error(&cfg, &["{CFG}:5:8:"]);
}

#[test]
fn unknown_module_parameter() {
    let cfg = format!("{HEAD}modparam(\"proto_ws\", \"no_such_param\", 1)\nroute {{ exit; }}\n");
    expect_error(&cfg, &["{CFG}:4:", "no_such_param", "proto_ws"]);
}

#[test]
fn wrong_parameter_type() {
    let cfg = format!("{HEAD}modparam(\"proto_ws\", \"ws_port\", \"eighty\")\nroute {{ exit; }}\n");
    expect_error(&cfg, &["{CFG}:4:", "ws_port", "integer"]);
}

#[test]
fn modparam_for_a_module_not_loaded() {
    let cfg = format!("{HEAD}modparam(\"tm\", \"fr_timeout\", 5)\nroute {{ exit; }}\n");
    expect_error(&cfg, &["{CFG}:4:", "tm", "not loaded"]);
}

#[test]
fn bad_socket_line_points_at_the_port() {
    // `socket = ws:127.0.0.1:99999`: the port starts at column 23.
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"proto_ws.so\"\nsocket = ws:127.0.0.1:99999\nroute { exit; }\n";
    expect_error(cfg, &["{CFG}:3:23:"]);
}

#[test]
fn socket_for_a_protocol_no_module_serves() {
    let cfg = format!("{HEAD}socket = udp:127.0.0.1:5060\nroute {{ exit; }}\n");
    expect_error(&cfg, &["{CFG}:4:10:", "udp"]);
}

#[test]
fn unknown_function_and_unknown_route() {
    let cfg = format!("{HEAD}route {{\n  frobnicate();\n}}\n");
    expect_error(&cfg, &["{CFG}:5:3:", "frobnicate"]);
    let cfg = format!("{HEAD}route {{\n  route(nowhere);\n}}\n");
    expect_error(&cfg, &["{CFG}:5:", "nowhere"]);
}

#[test]
fn unknown_global_parameter() {
    let cfg = format!("{HEAD}chldren = 4\nroute {{ exit; }}\n");
    expect_error(&cfg, &["{CFG}:4:1:", "chldren"]);
}

#[test]
fn missing_config_file() {
    let out = std::process::Command::new(sipcore_bin())
        .args(["-f", "/nonexistent/sipcore.cfg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/sipcore.cfg"), "{err}");
}

#[test]
fn missing_module_file() {
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"proto_nothing.so\"\nroute { exit; }\n";
    expect_error(cfg, &["{CFG}:2:", "proto_nothing.so", "not found"]);
}

#[test]
fn missing_module_in_the_default_mpath_says_where_plugins_come_from() {
    // No mpath: the binary's directory (a plain cargo build), which is where a `cargo install`ed
    // binary finds no plugins; the error says so.
    let cfg = "loadmodule \"proto_nothing.so\"\nroute { exit; }\n";
    // The binary names its own directory, resolved (no `..`).
    let dir = std::fs::canonicalize(target_dir())
        .unwrap()
        .display()
        .to_string();
    expect_error(
        cfg,
        &[
            "{CFG}:1:",
            &format!("{dir}/proto_nothing.so"),
            "mpath defaults to the sipcore binary's directory",
            "`cargo install` copies only the binary",
        ],
    );
}

#[test]
fn library_that_is_not_a_module() {
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"test_plugin_not_ours.so\"\nroute { exit; }\n";
    expect_error(cfg, &["libtest_plugin_not_ours.so", "not a sipcore module"]);
}

#[test]
fn abi_mismatch_is_refused() {
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"test_plugin_abi_mismatch.so\"\nroute { exit; }\n";
    let major = 1 + 1; // sipcore-abi 1.x; the test plugin claims the next major
    expect_error(
        cfg,
        &[
            "libtest_plugin_abi_mismatch.so",
            &format!("built for sipcore module ABI {major}.0"),
            "this sipcore speaks ABI 1.",
        ],
    );
}

#[test]
fn panic_in_plugin_init_is_caught() {
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"test_plugin_panicky.so\"\n\
               modparam(\"panicky\", \"panic_on\", \"init\")\nroute { exit; }\n";
    expect_error(
        cfg,
        &["panicky", "panicked in init: deliberate test panic at init"],
    );
}

#[test]
fn panic_in_plugin_start_is_caught() {
    let cfg = "mpath = \"{MPATH}\"\nsocket = tcp:127.0.0.1:{PORT}\nloadmodule \"test_plugin_panicky.so\"\n\
               modparam(\"panicky\", \"panic_on\", \"start\")\nroute { exit; }\n";
    expect_error(
        cfg,
        &[
            "panicky",
            "panicked in start: deliberate test panic at start",
        ],
    );
}

#[test]
fn check_only_mode_accepts_a_good_config() {
    let dir = temp_dir("check");
    let p = dir.join("ok.cfg");
    std::fs::write(
        &p,
        render(&format!("{HEAD}route {{ exit; }}\n"), free_port()),
    )
    .unwrap();
    let out = std::process::Command::new(sipcore_bin())
        .arg("-c")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
