//! Logging as operators run it: `log_stderror = no` sends RFC 3164 datagrams to syslog with
//! `log_facility` and `log_name` (the test binds the socket that `SIPCORE_SYSLOG_SOCKET`
//! names, as a syslog daemon binds `/dev/log`), `log_json = yes` writes one JSON object per
//! stderr line, xlog levels keep OpenSIPS's syslog priorities, repeated errors are counted
//! instead of written, and bad logging globals stop startup at their file:line:col.
mod common;
use common::ws::{connect_sip, next_text, send_text, status};
use common::*;
use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUTE: &str = r#"
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
route {
    if ($hdr(X-Test) == "boom") {
        xlog("L_ERR", "boom\n");
    }
    xlog("L_NOTICE", "options from $si\n");
    sl_send_reply(200, "OK");
}
"#;

/// An OPTIONS that makes the route log "boom" at L_ERR.
fn boom(i: u32) -> String {
    options_request(&format!("boom-{i}@test"), &format!("z9hG4bKboom{i}"), i)
        .replace("Content-Length: 0", "X-Test: boom\r\nContent-Length: 0")
}

/// Datagrams received on `sock` until `done` holds for all received so far (10 s at most).
fn collect_until(sock: &UnixDatagram, all: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 16_384];
    while !done(all) {
        assert!(
            Instant::now() < deadline,
            "syslog datagrams so far:\n{}",
            all.join("\n")
        );
        if let Ok(n) = sock.recv(&mut buf) {
            all.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

/// The `<PRI>` of a datagram and what follows its RFC 3164 timestamp (`Mmm dd hh:mm:ss `).
fn split(d: &str) -> (u16, &str) {
    let (pri, rest) = d
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .unwrap_or_else(|| panic!("no <PRI>: {d}"));
    let stamp = &rest[..16];
    let b = stamp.as_bytes();
    assert!(
        b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':' && b[15] == b' ',
        "not an RFC 3164 timestamp: {d}"
    );
    assert!(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .contains(&&stamp[..3]),
        "{d}"
    );
    (pri.parse().unwrap(), &rest[16..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_stderror_no_sends_to_syslog_with_facility_and_name() {
    let dir = temp_dir("syslog");
    let sock_path = dir.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let cfg = format!(
        "log_level = 3\nlog_stderror = no\nlog_facility = LOG_LOCAL0\nlog_name = \"sipcore-test\"\n{ROUTE}"
    );
    let srv = Server::start_env(&cfg, &[("SIPCORE_SYSLOG_SOCKET", sock_path.as_os_str())]);
    let tag = format!("sipcore-test[{}]: ", srv.child.id());
    let mut all = Vec::new();
    collect_until(&sock, &mut all, |a| {
        a.iter().any(|d| d.contains("INFO listening on"))
    });
    let mut ws = connect_sip(&srv.ws_url()).await;
    send_text(&mut ws, boom(1)).await;
    assert_eq!(status(&next_text(&mut ws).await), 200);
    collect_until(&sock, &mut all, |a| {
        a.iter().any(|d| d.contains("NOTICE options from"))
    });
    let find = |needle: &str| -> (u16, String) {
        let d = all
            .iter()
            .find(|d| d.contains(needle))
            .unwrap_or_else(|| panic!("no datagram with {needle:?}:\n{}", all.join("\n")));
        let (pri, rest) = split(d);
        assert!(rest.starts_with(&tag), "tag {tag:?} expected: {d}");
        (pri, rest[tag.len()..].to_string())
    };
    // LOG_LOCAL0 is facility 16: PRI = 128 + the syslog severity OpenSIPS uses for the level.
    let (pri, msg) = find("listening on");
    assert_eq!(pri, 128 + 6, "INFO is LOG_INFO: {msg}");
    assert!(msg.ends_with(", module: core"), "{msg}");
    assert_eq!(
        find("boom"),
        (128 + 3, "ERROR boom, module: script".to_string()),
        "L_ERR is LOG_ERR"
    );
    assert_eq!(
        find("options from"),
        (
            128 + 5,
            "NOTICE options from 127.0.0.1, module: script".to_string()
        ),
        "L_NOTICE is LOG_NOTICE"
    );
    // Nothing went to stderr.
    let stderr = srv.log();
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_json_writes_one_object_per_line_and_repeats_are_counted() {
    let cfg = format!("log_level = 3\nlog_json = yes\n{ROUTE}");
    let srv = Server::start(&cfg);
    let mut ws = connect_sip(&srv.ws_url()).await;
    // 50 identical errors as fast as the server takes them: more than 10 in one second.
    const N: u64 = 50;
    for i in 1..=N as u32 {
        send_text(&mut ws, boom(i)).await;
    }
    for _ in 0..N {
        assert_eq!(status(&next_text(&mut ws).await), 200);
    }
    // Every record written as "boom", plus every "repeated K" count, adds up to the 50 (the
    // counts appear when their windows end: wait for them).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = srv.log();
        let mut written = 0;
        let mut counted = 0;
        let mut summaries = 0;
        let complete = &log[..log.rfind('\n').map_or(0, |i| i + 1)];
        for line in complete.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{log}"));
            for key in ["ts", "level", "msg", "module"] {
                assert!(v[key].is_string(), "no {key}: {line}");
            }
            let msg = v["msg"].as_str().unwrap();
            if msg == "boom" {
                assert!(v["level"] == "ERROR" && v["module"] == "script", "{line}");
                written += 1;
            } else if let Some(k) = msg
                .strip_prefix("boom ... repeated ")
                .and_then(|r| r.strip_suffix(" more times (not logged)"))
            {
                assert_eq!(v["level"], "ERROR", "{line}");
                counted += k.parse::<u64>().unwrap();
                summaries += 1;
            } else if msg.starts_with("listening on") {
                assert!(v["level"] == "INFO" && v["module"] == "core", "{line}");
            } else if msg.starts_with("options from") {
                assert_eq!(v["level"], "NOTICE", "{line}");
            }
        }
        if written + counted == N {
            // The first 10 of a window are written; the 50 came within far less than 5 s.
            assert!(summaries >= 1 && (10..N).contains(&written), "{log}");
            break;
        }
        assert!(
            written + counted < N && Instant::now() < deadline,
            "written {written} + counted {counted} != {N}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs sipcore with `args` and `env` until it exits (20 s at most): (exit code, stderr).
fn run(cfg: &str, args: &[&str], env: &[(&str, &OsStr)]) -> (Option<i32>, String, String) {
    let dir = temp_dir("logcfg");
    let path = dir.join("log.cfg");
    std::fs::write(&path, render(cfg, free_port())).unwrap();
    let mut child = Command::new(sipcore_bin())
        .args(args)
        .arg("-f")
        .arg(&path)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sipcore did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn bad_logging_globals_name_file_line_col() {
    let cases = [
        (
            "log_facility = LOG_LOCAL9\n",
            ":1:16:",
            "unknown facility 'LOG_LOCAL9'",
        ),
        ("log_name = \"my sipcore\"\n", ":1:12:", "not a syslog tag"),
        (
            "log_stderror = no\nlog_json = yes\n",
            ":2:12:",
            "log_stderror = no",
        ),
    ];
    for (head, at, what) in cases {
        let (code, err, path) = run(&format!("{head}{ROUTE}"), &["-c"], &[]);
        assert_eq!(code, Some(1), "{head}: {err}");
        assert!(err.contains(&format!("{path}{at}")), "{head}: {err}");
        assert!(err.contains(what), "{head}: {err}");
    }
}

#[test]
fn no_syslog_socket_stops_startup_but_not_a_check() {
    let dir = temp_dir("nosyslog");
    let missing = dir.join("no-such.sock");
    let cfg = format!("log_stderror = no\n{ROUTE}");
    let env = [("SIPCORE_SYSLOG_SOCKET", missing.as_os_str())];
    let (code, err, _) = run(&cfg, &[], &env);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("log_stderror = no: cannot send to the syslog socket")
            && err.contains(&missing.display().to_string()),
        "{err}"
    );
    // `sipcore -c` reports to its terminal: it needs no syslog.
    let (code, err, _) = run(&cfg, &["-c"], &env);
    assert_eq!(code, Some(0), "{err}");
}
