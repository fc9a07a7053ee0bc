//! Issue 10, item 19: the bundled configurations stay usable and in step with the README.
//!
//! * every `conf/*.cfg` (and `bench/sipcore*.cfg`) passes `sipcore -c -f` as shipped, and also with its commented-out
//!   `loadmodule`/`modparam` lines enabled (the HEP block the comments tell users to uncomment);
//! * every `modparam("proto_ws", ...)` the README documents appears in `conf/sipcore.cfg`
//!   (active, or commented out for the user to enable) with the README's value, except the
//!   deliberate deviations listed in [`DELIBERATE`];
//! * the README documents every parameter the proto_ws module declares (the list comes from the
//!   binary itself: its error message for an unknown parameter names them all).
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Parameters whose value in the default config differs from the README's on purpose, and why.
const DELIBERATE: &[(&str, &str)] = &[(
    "require_origin",
    "the default config also serves SIP stacks that send no Origin (baresip, pjsip)",
)];

/// `sipcore -c -f path` (modules from the build): (success, stderr).
fn check(path: &Path) -> (bool, String) {
    let out = Command::new(sipcore_bin())
        .arg("-c")
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run sipcore -c");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A config value: quoted string or bare word/number, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Str(String),
    Int(String),
}

/// `(module, param, value)` of a `modparam("m", "p", v)` at the start of `line` (after an
/// optional `#` comment marker when `commented`), or None.
fn modparam(line: &str) -> Option<(String, String, Val)> {
    let rest = line.trim_start().strip_prefix("modparam")?.trim_start();
    let rest = rest.strip_prefix('(')?;
    let mut args = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some((_, c)) = chars.next() {
        match c {
            '"' if quoted => quoted = false,
            '"' => {
                quoted = true;
                was_quoted = true;
            }
            '\\' if quoted => {
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
            }
            ',' | ')' if !quoted => {
                let text = if was_quoted {
                    cur.clone()
                } else {
                    cur.trim().to_string()
                };
                args.push(if was_quoted {
                    Val::Str(text)
                } else {
                    Val::Int(text)
                });
                cur.clear();
                was_quoted = false;
                if c == ')' {
                    break;
                }
            }
            c if quoted => cur.push(c),
            c if c.is_whitespace() => {}
            c => cur.push(c),
        }
    }
    match args.as_slice() {
        [Val::Str(m), Val::Str(p), v] => Some((m.clone(), p.clone(), v.clone())),
        _ => None,
    }
}

/// proto_ws modparams in `text`: (param, value, commented out?). Lines commented with `#`
/// count (the config documents them for the user to enable).
fn ws_params(text: &str) -> Vec<(String, Val, bool)> {
    module_params(text, "proto_ws")
}

/// [`ws_params`] for the modparams of `module`.
fn module_params(text: &str, module: &str) -> Vec<(String, Val, bool)> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let (body, commented) = match t.strip_prefix('#') {
                Some(b) => (b.trim_start_matches('#').trim_start(), true),
                None => (t, false),
            };
            let (m, p, v) = modparam(body)?;
            (m == module).then_some((p, v, commented))
        })
        .collect()
}

#[test]
fn modparam_lines_parse() {
    assert_eq!(
        modparam(r#"modparam("proto_ws", "ws_port", 80)   # x, y"#),
        Some(("proto_ws".into(), "ws_port".into(), Val::Int("80".into())))
    );
    assert_eq!(
        modparam(r#"modparam( "proto_ws" , "ws_resource" , "/a,b)" )"#),
        Some((
            "proto_ws".into(),
            "ws_resource".into(),
            Val::Str("/a,b)".into())
        ))
    );
    assert_eq!(modparam("loadmodule \"proto_ws.so\""), None);
    assert_eq!(
        ws_params("# modparam(\"proto_ws\", \"trace_on\", 0)\nmodparam(\"proto_hep\", \"x\", 1)"),
        vec![("trace_on".into(), Val::Int("0".into()), true)]
    );
}

/// `conf/*.cfg` and the benchmark's `bench/sipcore*.cfg` (not the Kamailio peers' configs).
fn bundled_configs() -> Vec<PathBuf> {
    let cfgs = |dir: &str, prefix: &str| -> Vec<PathBuf> {
        std::fs::read_dir(repo().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect()
    };
    let mut v = cfgs("conf", "");
    assert!(!v.is_empty(), "no conf/*.cfg");
    v.extend(cfgs("bench", "sipcore"));
    v.sort();
    v
}

/// A config whose TLS files are relative to it (`conf/sipcore-wss.cfg`: `tls/cert.pem`, made
/// by `conf/tls/make-cert.sh`, not shipped) is checked as a copy beside a fresh `tls/`.
fn needs_certs(text: &str) -> bool {
    text.contains("]tls/")
}

/// `text` written as `name` into a fresh directory, with `tls/` made there if it needs it.
fn staged(name: &std::ffi::OsStr, text: &str) -> PathBuf {
    let dir = temp_dir("bundled");
    if needs_certs(text) {
        make_cert_in(&dir.join("tls"), &[]);
    }
    let copy = dir.join(name);
    std::fs::write(&copy, text).unwrap();
    copy
}

#[test]
fn every_bundled_config_passes_the_check() {
    for path in bundled_configs() {
        let original = std::fs::read_to_string(&path).unwrap();
        let target = if needs_certs(&original) {
            staged(path.file_name().unwrap(), &original)
        } else {
            path.clone()
        };
        let (ok, err) = check(&target);
        assert!(ok, "sipcore -c -f {}:\n{err}", path.display());

        // The same with its commented-out modules and parameters enabled, in place (so that
        // relative paths and the default module directory are the same).
        let text = std::fs::read_to_string(&path).unwrap();
        let enabled: String = text
            .lines()
            .map(|l| {
                let body = l.trim_start().trim_start_matches('#').trim_start();
                if l.trim_start().starts_with('#')
                    && (body.starts_with("loadmodule ") || body.starts_with("modparam("))
                {
                    body.to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        if enabled != text.lines().collect::<Vec<_>>().join("\n") {
            // The default module path is the binary's directory, as for the original.
            let copy = staged(path.file_name().unwrap(), &(enabled + "\n"));
            let (ok, err) = check(&copy);
            assert!(
                ok,
                "{} with its commented-out loadmodule/modparam lines enabled:\n{err}",
                path.display()
            );
        }
    }
}

#[test]
fn default_config_sets_every_documented_proto_ws_parameter() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let conf = std::fs::read_to_string(repo().join("conf/sipcore.cfg")).unwrap();
    let documented = ws_params(&readme);
    assert!(
        documented.len() >= 10,
        "README's proto_ws modparams not found: {documented:?}"
    );
    let in_conf = ws_params(&conf);
    let mut problems = Vec::new();
    for (name, value, _) in &documented {
        let lines: Vec<&(String, Val, bool)> = in_conf.iter().filter(|(n, ..)| n == name).collect();
        if lines.is_empty() {
            problems.push(format!("{name}: missing (README: {value:?})"));
            continue;
        }
        if DELIBERATE.iter().any(|(n, _)| n == name) {
            continue;
        }
        for (_, v, commented) in lines {
            if v != value {
                let how = if *commented { " (commented out)" } else { "" };
                problems.push(format!("{name}: {v:?}{how}, README says {value:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "conf/sipcore.cfg and the README's proto_ws parameters disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn readme_documents_every_proto_ws_parameter() {
    readme_documents_every_parameter_of("proto_ws", 10);
}

#[test]
fn readme_documents_every_proto_udp_parameter() {
    readme_documents_every_parameter_of("proto_udp", 6);
}

#[test]
fn readme_documents_every_proto_tcp_parameter() {
    readme_documents_every_parameter_of("proto_tcp", 15);
}

#[test]
fn readme_documents_every_proto_tls_parameter() {
    readme_documents_every_parameter_of("proto_tls", 15);
}

/// Every parameter `module` declares (at least `min`) has a `modparam` line in the README.
fn readme_documents_every_parameter_of(module: &str, min: usize) {
    // The loader names every declared parameter when refusing an unknown one.
    let cfg = format!(
        "mpath = \"{{MPATH}}\"\nloadmodule \"{module}.so\"\n\
         modparam(\"{module}\", \"no_such_parameter\", 1)\nroute {{ exit; }}\n"
    );
    let dir = temp_dir("params");
    let path = dir.join("probe.cfg");
    std::fs::write(&path, render(&cfg, free_port())).unwrap();
    let (ok, err) = check(&path);
    assert!(!ok, "an unknown parameter was accepted");
    let list = err
        .split("(it has: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no parameter list in: {err}"));
    let declared: Vec<&str> = list.split(',').map(str::trim).collect();
    assert!(declared.len() >= min, "{declared:?}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let documented: Vec<String> = module_params(&readme, module)
        .into_iter()
        .map(|(n, ..)| n)
        .collect();
    let undocumented: Vec<&&str> = declared
        .iter()
        .filter(|d| !documented.iter().any(|n| n == *d))
        .collect();
    assert!(
        undocumented.is_empty(),
        "{module} parameters missing from the README's modparam list: {undocumented:?}"
    );
}

/// `conf/sipcore-wss.cfg` routes exactly as `conf/sipcore.cfg` (authentication included):
/// its routing section is a copy, and a fix to one must reach the other.
#[test]
fn the_wss_config_routes_as_the_default_config() {
    let routes = |name: &str| {
        let text = std::fs::read_to_string(repo().join("conf").join(name)).unwrap();
        let at = text
            .find("\nroute {")
            .unwrap_or_else(|| panic!("{name}: no main route"));
        text[at..].to_string()
    };
    assert_eq!(routes("sipcore-wss.cfg"), routes("sipcore.cfg"));
}
