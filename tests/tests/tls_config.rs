//! Issue 11 part 3: OpenSIPS's tls_mgm lines work unchanged (`loadmodule "tls_mgm.so"`,
//! `"tls_openssl.so"`, `[domain]` prefixes) and are checked before anything starts: a bad
//! value stops startup at its file:line:col, a missing or unreadable file or a key that is not
//! the certificate's names the file and OpenSSL's reason, and a good configuration loads. The
//! certificates are made by the `openssl` command-line tool at test time.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HEAD: &str = "mpath = \"{MPATH}\"\nsocket = ws:127.0.0.1:{PORT}\nloadmodule \"proto_ws.so\"\nloadmodule \"tls_mgm.so\"\nloadmodule \"tls_openssl.so\"\n";

/// An EC P-256 self-signed certificate and its key, and a second key (not the certificate's).
struct Files {
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files() -> Files {
    let dir = temp_dir("tls");
    for key in ["key.pem", "other.pem"] {
        openssl(
            &dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                key,
            ],
        );
    }
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sip.example.test",
        ],
    );
    Files {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        other_key: dir.join("other.pem"),
    }
}

fn tls_lines(cert: &Path, key: &Path, method: &str) -> String {
    format!(
        "modparam(\"tls_mgm\", \"server_domain\", \"wss\")\n\
         modparam(\"tls_mgm\", \"match_ip_address\", \"[wss]*\")\n\
         modparam(\"tls_mgm\", \"certificate\", \"[wss]{}\")\n\
         modparam(\"tls_mgm\", \"private_key\", \"[wss]{}\")\n\
         modparam(\"tls_mgm\", \"tls_method\", \"[wss]{method}\")\n",
        cert.display(),
        key.display()
    )
}

fn expect_error(cfg: &str, needles: &[String]) {
    let (status, err, path) = run_to_exit(cfg, "tls.cfg");
    assert_eq!(
        status.code(),
        Some(1),
        "must fail cleanly: {status:?}\n{err}"
    );
    for n in needles {
        let n = n.replace("{CFG}", &path.display().to_string());
        assert!(err.contains(&n), "stderr lacks {n:?}:\n{err}");
    }
}

#[test]
fn opensips_tls_mgm_lines_load() {
    let f = files();
    // OpenSIPS's own template says TLSv1: accepted, raised to TLS 1.2 with a warning that
    // points at the value.
    let cfg = format!(
        "{HEAD}{}route {{ exit; }}\n",
        tls_lines(&f.cert, &f.key, "TLSv1")
    );
    let srv = Server::start(&cfg);
    srv.wait_log(
        "TLS domains loaded: 1 server, 1 client",
        Duration::from_secs(10),
    );
    // Line 10 is the tls_method line; its value starts at column 35.
    srv.wait_log(
        "sipcore.cfg:10:35: tls_mgm tls_method",
        Duration::from_secs(10),
    );
}

#[test]
fn a_bad_method_points_at_its_value() {
    let f = files();
    let cfg = format!(
        "{HEAD}{}route {{ exit; }}\n",
        tls_lines(&f.cert, &f.key, "TLSv9")
    );
    expect_error(
        &cfg,
        &["{CFG}:10:35:".into(), "tls_method".into(), "TLSv9".into()],
    );
}

#[test]
fn an_undeclared_domain_points_at_the_line_that_uses_it() {
    let cfg = format!(
        "{HEAD}modparam(\"tls_mgm\", \"server_domain\", \"a\")\n\
         modparam(\"tls_mgm\", \"certificate\", \"[b]/x.pem\")\nroute {{ exit; }}\n"
    );
    expect_error(
        &cfg,
        &["{CFG}:7:".into(), "[b]".into(), "not defined".into()],
    );
}

#[test]
fn a_missing_certificate_names_the_file_and_the_reason() {
    let f = files();
    let missing = f.cert.with_file_name("nowhere.pem");
    let cfg = format!(
        "{HEAD}{}route {{ exit; }}\n",
        tls_lines(&missing, &f.key, "TLSv1_2-")
    );
    expect_error(
        &cfg,
        &[
            "{CFG}:8:".into(),
            missing.display().to_string(),
            "No such file".into(),
        ],
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let f = files();
    let cfg = format!(
        "{HEAD}{}route {{ exit; }}\n",
        tls_lines(&f.cert, &f.other_key, "TLSv1_2-")
    );
    expect_error(
        &cfg,
        &[
            "{CFG}:9:".into(),
            f.other_key.display().to_string(),
            "does not match".into(),
        ],
    );
}

#[test]
fn a_file_that_is_not_pem_is_refused_with_openssls_reason() {
    let f = files();
    std::fs::write(&f.cert, "not a certificate\n").unwrap();
    let cfg = format!(
        "{HEAD}{}route {{ exit; }}\n",
        tls_lines(&f.cert, &f.key, "TLSv1_2-")
    );
    expect_error(&cfg, &["{CFG}:8:".into(), f.cert.display().to_string()]);
}
