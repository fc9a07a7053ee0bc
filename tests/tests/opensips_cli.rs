//! The real opensips-cli (PyPI `opensipscli`, its `http` communication type) against the real
//! sipcore: `-x mi get_statistics ...`, `ul_dump`, `ws_trace`, `reset_statistics`, errors.
//! opensips-cli must be on PATH (`.ci/run` installs it into a virtualenv and puts it there).
mod common;

use common::metrics::{stats_config, wait_port};
use common::sipws::*;
use common::*;
use serde_json::{json, Value};
use std::net::UdpSocket;
use std::path::Path;
use std::process::Output;

/// A config file for opensips-cli (its `[default]` section) talking to our MI.
fn cli_config(dir: &Path, mi_port: u16) -> std::path::PathBuf {
    let path = dir.join("opensips-cli.cfg");
    let text = format!(
        "[default]\n\
         log_level: WARNING\n\
         output_type: pretty-print\n\
         communication_type: http\n\
         url: http://127.0.0.1:{mi_port}/mi\n\
         history_file: {}\n",
        dir.join("history").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `opensips-cli -f CFG -x mi ARGS...`, run with HOME in `dir` (it writes no file of ours).
async fn cli(cfg: &Path, home: &Path, args: &[&str]) -> Output {
    let (cfg, home) = (cfg.to_path_buf(), home.to_path_buf());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("opensips-cli")
            .arg("-f")
            .arg(&cfg)
            .args(["-x", "mi"])
            .args(&args)
            .env("HOME", &home)
            .output()
            .expect("opensips-cli on PATH (pip install opensipscli; .ci/run installs it)")
    })
    .await
    .unwrap()
}

/// The JSON opensips-cli printed (pretty-print output), asserting it succeeded.
async fn cli_ok(cfg: &Path, home: &Path, args: &[&str]) -> Value {
    let out = cli(cfg, home, args).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "opensips-cli {args:?}: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("opensips-cli {args:?} printed ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensips_cli_drives_sipcore_mi() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (cfg, mi_port) = stats_config(collector.local_addr().unwrap().port());
    let srv = Server::start(&cfg);
    wait_port(mi_port);
    let home = temp_dir("opensips-cli");
    let c = cli_config(&home, mi_port);
    let _ws = register_one(&srv.ws_url(), "carol").await;

    // get_statistics: positional (opensips-cli sends [["all"]]) and named (statistics=...).
    let all = cli_ok(&c, &home, &["get_statistics", "all"]).await;
    assert!(all["core:rcv_requests"].as_u64().unwrap() >= 1, "{all}");
    assert_eq!(all["usrloc:registered_users"], json!(1), "{all}");
    assert!(all["shmem:real_used_size"].as_u64().unwrap() > 0, "{all}");
    assert!(all["ws:connections"].as_u64().unwrap() >= 1, "{all}");
    let two = cli_ok(&c, &home, &["get_statistics", "usrloc:", "registrar:"]).await;
    let keys: Vec<&String> = two.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("usrloc:") || k.starts_with("registrar:")),
        "{two}"
    );
    assert_eq!(two["usrloc:location-users"], json!(1), "{two}");
    let named = cli_ok(
        &c,
        &home,
        &["get_statistics", "statistics=accepted_regs rcv_requests"],
    )
    .await;
    assert_eq!(named.as_object().unwrap().len(), 2, "{named}");
    assert!(
        named["registrar:accepted_regs"].as_u64().unwrap() >= 1,
        "{named}"
    );

    // ul_dump: the registered AoR.
    let dump = cli_ok(&c, &home, &["ul_dump"]).await;
    assert!(dump.to_string().contains("carol@example.com"), "{dump}");

    // ws_trace on / query (a plugin's command, through the ABI).
    assert_eq!(cli_ok(&c, &home, &["ws_trace", "on"]).await, json!("OK"));
    assert_eq!(
        cli_ok(&c, &home, &["ws_trace"]).await,
        json!({"WS tracing": "on"})
    );
    assert_eq!(cli_ok(&c, &home, &["ws_trace", "off"]).await, json!("OK"));

    // reset_statistics, and the commands list opensips-cli completes from.
    assert_eq!(
        cli_ok(&c, &home, &["reset_statistics", "accepted_regs"]).await,
        json!("OK")
    );
    let one = cli_ok(&c, &home, &["get_statistics", "accepted_regs"]).await;
    assert_eq!(one, json!({"registrar:accepted_regs": 0}));
    let which = cli_ok(&c, &home, &["which"]).await;
    assert!(
        which.as_array().unwrap().contains(&json!("get_statistics")),
        "{which}"
    );

    // An error comes back as OpenSIPS's: code and message, and a failed exit.
    let out = cli(&c, &home, &["get_statistics", "no_such_stat"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404: Statistics Not Found"), "{err}");
}
