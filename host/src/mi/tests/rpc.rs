//! Commands, JSON-RPC errors, batches and HTTP error statuses over real sockets.

use super::*;
#[test]
fn builtin_commands_over_http() {
    let (srv, _) = start();
    let a = srv.local_addr();
    let names = json!([
        "add", "bad", "block", "boom", "echo", "help", "uptime", "version", "which", "ws:echo"
    ]);
    assert_eq!(
        call(a, "which", json!([])),
        json!({"jsonrpc":"2.0","result":names,"id":7})
    );
    assert_eq!(
        call(a, "version", Value::Null),
        json!({"jsonrpc":"2.0","result":{"Server":"sipcore 9.9.9"},"id":7})
    );
    let up = call(a, "uptime", json!([]));
    let up = &up["result"];
    assert_eq!(up.as_object().unwrap().len(), 3);
    let secs: u64 = up["Up time"]
        .as_str()
        .unwrap()
        .strip_suffix(" [sec]")
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs < 60, "{secs}");
    assert_eq!(up["Now"].as_str().unwrap().len(), 24);
    assert_eq!(up["Up since"].as_str().unwrap().len(), 24);
    assert_eq!(
        call(a, "help", json!(["ws:echo"]))["result"],
        json!({"Help": "Echoes its params.", "Alias of": "echo"})
    );
    // GET on the root lists the names.
    let (status, _, body) = raw(a, b"GET /mi HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), names);
}

#[test]
fn user_commands_params_and_errors() {
    let (srv, _) = start();
    let a = srv.local_addr();
    assert_eq!(
        call(a, "ws:echo", json!({"x": [1]}))["result"],
        json!({"x": [1]})
    );
    assert_eq!(call(a, "add", json!(["2", 3]))["result"], json!(5));
    assert_eq!(
        call(a, "add", json!({"a": 1, "b": "-4"}))["result"],
        json!(-3)
    );
    let err = |v: Value| (v["error"].clone(), v["id"].clone());
    assert_eq!(
        err(call(a, "add", json!(["2"]))),
        (
            json!({"code":-32602,"message":"Invalid params: missing parameter 'b'"}),
            json!(7)
        )
    );
    assert_eq!(
        err(call(a, "nope", json!([]))),
        (
            json!({"code":-32601,"message":"Method not found: nope"}),
            json!(7)
        )
    );
    assert_eq!(
        err(call(a, "bad", json!([]))),
        (json!({"code":400,"message":"Bad param"}), json!(7))
    );
    let v = rpc(a, "{\"jsonrpc\":\"2.0\",\"method\":\"which\",\"id\":1");
    assert_eq!(v["id"], Value::Null);
    assert_eq!(v["error"]["code"], json!(-32700));
    assert_eq!(
        err(rpc(
            a,
            r#"{"jsonrpc":"2.0","method":"which","params":5,"id":2}"#
        )),
        (
            json!({"code":-32600,"message":"Invalid Request: params must be an array or an object"}),
            json!(2)
        )
    );
}

#[test]
fn panicking_handler_answers_internal_error_and_server_survives() {
    let (srv, _) = start();
    let a = srv.local_addr();
    assert_eq!(
        call(a, "boom", json!([]))["error"],
        json!({"code":-32603,"message":"Internal error: command 'boom' panicked: handler exploded"})
    );
    assert_eq!(call(a, "add", json!([1, 1]))["result"], json!(2));
}

#[test]
fn batch_and_notifications() {
    let (srv, _) = start();
    let a = srv.local_addr();
    let v = rpc(
        a,
        r#"[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1},
            {"jsonrpc":"2.0","method":"add","params":[1,2]},
            {"jsonrpc":"2.0","method":"nope","id":"x"}]"#,
    );
    assert_eq!(
        v,
        json!([
            {"jsonrpc":"2.0","result":3,"id":1},
            {"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope"},"id":"x"}
        ])
    );
    for body in [
        r#"{"jsonrpc":"2.0","method":"which"}"#,
        r#"[{"jsonrpc":"2.0","method":"which"},{"jsonrpc":"2.0","method":"nope"}]"#,
    ] {
        let (status, head, body) = post(a, "/mi", body);
        assert_eq!(
            (status, head.as_str(), body.len()),
            (
                204,
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
                0
            )
        );
    }
}

#[test]
fn http_error_paths() {
    let (srv, _) = start();
    let a = srv.local_addr();
    let (status, _, body) = post(a, "/other", "{}");
    assert_eq!((status, body.as_slice()), (404, &b"Not Found\n"[..]));
    let (status, head, _) = raw(a, b"PUT /mi HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("\r\nAllow: GET, POST\r\n"), "{head}");
    let (status, _, _) = raw(a, b"POST /mi HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 411);
    let (status, _, _) = raw(a, b"POST /mi HTTP/1.1\r\nContent-Length: nope\r\n\r\n");
    assert_eq!(status, 400);
    let (status, _, _) = raw(a, b"BAD\x01 /mi HTTP/1.1\r\n\r\n");
    assert_eq!(status, 400);
    let big_head = format!("POST /mi HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
    let (status, _, _) = raw(a, big_head.as_bytes());
    assert_eq!(status, 431);
    // Exactly 64 KiB is accepted, one byte more is refused (the client still sends it all).
    let fill = |n: usize| {
        let prefix = r#"{"jsonrpc":"2.0","method":"echo","params":[""#;
        let suffix = r#""],"id":1}"#;
        format!(
            "{prefix}{}{suffix}",
            "a".repeat(n - prefix.len() - suffix.len())
        )
    };
    let v = rpc(a, &fill(http::MAX_BODY));
    assert_eq!(
        v["result"][0].as_str().map(str::len),
        Some(http::MAX_BODY - 54)
    );
    let (status, _, body) = post(a, "/mi", &fill(http::MAX_BODY + 1));
    assert_eq!(
        (status, body.as_slice()),
        (413, &b"Content Too Large\n"[..])
    );
}

#[test]
fn metrics_path_serves_the_renderer_only_on_get() {
    let r = Arc::new(Registry::with_builtins("0", Instant::now()));
    let metrics: http::Metrics = Arc::new(|| "# TYPE x gauge\nx 1\n".to_string());
    let srv =
        http::serve_with_metrics(r.clone(), "127.0.0.1:0".parse().unwrap(), "mi", metrics).unwrap();
    let addr = srv.local_addr();
    let (st, head, body) = raw(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((st, body.as_slice()), (200, &b"# TYPE x gauge\nx 1\n"[..]));
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (st, head, _) = post(addr, "/metrics", "{}");
    assert_eq!(st, 405, "{head}");
    assert!(head.contains("Allow: GET"), "{head}");
    // The MI keeps its path; without a renderer /metrics is just another unknown path.
    assert_eq!(
        call(addr, "version", json!([]))["result"],
        json!({"Server": "sipcore 0"})
    );
    let plain = http::serve(r, "127.0.0.1:0".parse().unwrap(), "mi").unwrap();
    let (st, _, _) = raw(
        plain.local_addr(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(st, 404);
}
