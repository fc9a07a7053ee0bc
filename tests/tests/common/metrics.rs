//! `GET /metrics` of a running server, and the Prometheus text parsed into name → value.
use super::*;
use std::collections::HashMap;
use std::io::Write;

/// The bundled default config without authentication (see [`default_config_without_auth`]),
/// plus proto_hep with one UDP destination `collector` at `hep_port` and proto_udp with a UDP
/// socket, so that every group of statistics is exported; with its MI port.
pub fn stats_config(hep_port: u16) -> (String, u16) {
    let (cfg, mi) = default_config_without_auth();
    let ws = "socket = ws:127.0.0.1:{PORT}";
    let udp = super::udp::free_udp_port();
    let cfg = cfg
        .replace(ws, &format!("{ws}\nsocket = udp:127.0.0.1:{udp}"))
        .replace(
            "loadmodule \"proto_ws.so\"",
            &format!(
                "loadmodule \"proto_ws.so\"\nloadmodule \"proto_udp.so\"\nloadmodule \"proto_hep.so\"\n\
                 modparam(\"proto_hep\", \"hep_id\", \"[collector]127.0.0.1:{hep_port};transport=udp\")"
            ),
        );
    (cfg, mi)
}

/// Wait until something listens on 127.0.0.1:`port` (the MI starts after the WebSocket port).
pub fn wait_port(port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 GET of `path` on 127.0.0.1:`port`: (status, head, body).
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the MI port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The text of `GET /metrics` (asserting a 200 in the Prometheus text format).
pub fn scrape(mi_port: u16) -> String {
    let (status, head, body) = http_get(mi_port, "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

/// Sample lines of an exposition text: metric name → value (no labels are used).
pub fn values(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, v) = l.split_once(' ')?;
            Some((name.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Scrape until `ok` holds for the values (or fail after 10 s with the last scrape).
pub fn wait_metrics(
    mi_port: u16,
    what: &str,
    ok: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(mi_port);
        let v = values(&text);
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `promtool check metrics` (Debian package `prometheus`) on `text`: its output when it finds
/// a problem.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
