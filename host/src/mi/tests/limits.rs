//! Expect/100-continue, the read timeout, the concurrency limit, and the client.

use super::*;
#[test]
fn expect_continue() {
    let (srv, _) = start();
    let mut s = TcpStream::connect(srv.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[2,2],"id":1}"#;
    let head = format!(
        "POST /mi HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let (status, _, body) = split(&out);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["result"],
        json!(4)
    );
}

#[test]
fn slow_request_times_out_with_408() {
    let (srv, _) = start();
    let t0 = Instant::now();
    let (status, _, _) = raw(
        srv.local_addr(),
        b"POST /mi HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
    );
    assert_eq!(status, 408);
    let took = t0.elapsed();
    assert!(
        took >= http::READ_TIMEOUT && took < http::READ_TIMEOUT * 2,
        "{took:?}"
    );
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn concurrency_limit_answers_503() {
    let (srv, gate) = start();
    let a = srv.local_addr();
    let body = r#"{"jsonrpc":"2.0","method":"block","id":1}"#;
    let held: Vec<_> = (0..MAX_CONCURRENT)
        .map(|_| thread::spawn(move || post(a, "/mi", body)))
        .collect();
    wait_for("16 blocked handlers", || {
        gate.entered.load(Ordering::SeqCst) == MAX_CONCURRENT
    });
    assert_eq!(srv.active(), MAX_CONCURRENT);
    let (status, head, body) = post(a, "/mi", r#"{"jsonrpc":"2.0","method":"which","id":1}"#);
    assert_eq!(
        (status, body.as_slice()),
        (503, &b"Service Unavailable\n"[..])
    );
    assert!(head.contains("\r\nRetry-After: 1\r\n"), "{head}");
    gate.release();
    for h in held {
        let (status, _, body) = h.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["result"],
            json!("released")
        );
    }
    wait_for("slots freed", || srv.active() == 0);
    assert_eq!(call(a, "add", json!([1, 2]))["result"], json!(3));
}

#[test]
fn client_against_server() {
    let (mut srv, gate) = start();
    let a = srv.local_addr();
    let t = Duration::from_secs(5);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        client::call(a, "/mi", "version", vec![], t).unwrap(),
        "{\n  \"Server\": \"sipcore 9.9.9\"\n}"
    );
    assert_eq!(
        client::call(a, "mi", "add", s(&["40", "2"]), t).unwrap(),
        "42"
    );
    assert_eq!(
        client::call(a, "/mi", "echo", s(&["on"]), t).unwrap(),
        "[\n  \"on\"\n]"
    );
    match client::call(a, "/mi", "nope", vec![], t) {
        Err(e @ ClientError::Rpc { code: -32601, .. }) => assert_eq!(
            e.to_string(),
            "{\n  \"code\": -32601,\n  \"message\": \"Method not found: nope\"\n}"
        ),
        other => panic!("{other:?}"),
    }
    match client::call(a, "/mi", "bad", vec![], t) {
        Err(ClientError::Rpc {
            code: 400, message, ..
        }) => assert_eq!(message, "Bad param"),
        other => panic!("{other:?}"),
    }
    match client::call(a, "/wrong", "which", vec![], t) {
        Err(ClientError::Http { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    match client::call(a, "/mi", "block", vec![], Duration::from_millis(300)) {
        Err(ClientError::Timeout(x)) => assert_eq!(x, a),
        other => panic!("{other:?}"),
    }
    gate.release();
    srv.stop();
    srv.stop(); // idempotent
    assert_eq!(srv.active(), 0);
    match client::call(a, "/mi", "which", vec![], t) {
        Err(ClientError::Io { addr, .. }) => assert_eq!(addr, a),
        other => panic!("{other:?}"),
    }
}

/// Connections that never send a request do not take the command slots: with more of them
/// than [`MAX_CONCURRENT`] open, a real request is answered at once, and each silent one is
/// answered 408 and closed after the read deadline.
#[test]
fn silent_connections_do_not_starve_the_others() {
    let (srv, _) = start();
    let a = srv.local_addr();
    let silent: Vec<TcpStream> = (0..MAX_CONCURRENT + 4)
        .map(|_| TcpStream::connect(a).unwrap())
        .collect();
    wait_for("silent connections accepted", || {
        srv.connections() == MAX_CONCURRENT + 4
    });
    let t0 = Instant::now();
    assert_eq!(call(a, "add", json!([1, 2]))["result"], json!(3));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    for mut s in silent {
        s.set_read_timeout(Some(http::READ_TIMEOUT * 3)).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(split(&out).0, 408);
    }
    wait_for("connections closed", || srv.connections() == 0);
}

/// A streamed command's answer is written as produced (no Content-Length, closed at the end)
/// and the client reads it whole, however large; in a batch it is answered like any other.
#[test]
fn streamed_answers() {
    let r = Registry::new();
    r.register_stream(
        "numbers",
        "",
        Arc::new(|p: &Params<'_>| {
            let n = p.get_int((0, "n"))?;
            Ok(Box::new(move |w: &mut dyn Write| {
                w.write_all(b"[")?;
                for i in 0..n {
                    if i > 0 {
                        w.write_all(b",")?;
                    }
                    write!(w, "{i}")?;
                }
                w.write_all(b"]")
            }) as crate::mi::Writer)
        }),
    )
    .unwrap();
    assert_eq!(r.call("numbers", &json!(["3"])), Ok(json!([0, 1, 2])));
    assert!(r.call("numbers", &json!([])).is_err());
    let srv = http::serve(Arc::new(r), "127.0.0.1:0".parse().unwrap(), "mi").unwrap();
    let a = srv.local_addr();
    let (status, head, body) = post(
        a,
        "/mi",
        r#"{"jsonrpc":"2.0","method":"numbers","params":[300000],"id":7}"#,
    );
    assert_eq!(status, 200);
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["id"], json!(7));
    assert_eq!(v["result"].as_array().map(Vec::len), Some(300_000));
    let big = client::call(
        a,
        "/mi",
        "numbers",
        vec!["300000".into()],
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&big).unwrap()[299_999],
        json!(299_999)
    );
    let v = call(a, "numbers", json!({"n": "x"}));
    assert_eq!(v["error"]["code"], json!(-32602), "{v}");
    let (_, _, body) = post(
        a,
        "/mi",
        r#"[{"jsonrpc":"2.0","method":"numbers","params":[2],"id":1}]"#,
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["result"], json!([0, 1]));
}
