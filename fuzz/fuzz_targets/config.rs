//! The configuration file (OpenSIPS `.cfg` syntax: lexer, parser, script compiler) on
//! arbitrary text. Invariants: no panic; every error names `file:line:col` inside the text,
//! with the offending line quoted exactly; every span of a parsed file is within the text.
#![no_main]
use sipcore::config::{parse_str, ConfigError, ErrorKind};
use sipcore::script::{compile, FunctionTable};

const FILE: &str = "fuzz.cfg";

/// The error's position is a real place in `src` and its rendering says so.
fn check_error(src: &str, e: &ConfigError) {
    assert_eq!(e.file, FILE);
    if matches!(e.kind, ErrorKind::Io(_) | ErrorKind::TooLarge) {
        return;
    }
    assert!(e.line >= 1 && e.col >= 1, "no position: {e:?}");
    let line = src
        .split('\n')
        .nth(e.line as usize - 1)
        .unwrap_or_else(|| panic!("line {} past the end: {e:?}", e.line));
    let line = line.strip_suffix('\r').unwrap_or(line);
    assert_eq!(e.source_line, line, "quoted line differs");
    assert!(
        e.col as usize <= line.chars().count() + 1,
        "column past the end of the line: {e:?}"
    );
    let shown = e.to_string();
    let prefix = format!("{FILE}:{}:{}: ", e.line, e.col);
    assert!(shown.starts_with(&prefix), "{shown:?}");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let cfg = match parse_str(&src, FILE) {
        Ok(cfg) => cfg,
        Err(e) => return check_error(&src, &e),
    };
    assert_eq!(cfg.source(), src);
    for (text, span) in cfg.sockets() {
        assert!(span.start <= span.end && span.end as usize <= src.len());
        assert_eq!(cfg.text(span), text, "socket span does not cover its text");
        let (line, col) = cfg.position(span);
        assert!(line >= 1 && col >= 1);
    }
    for r in &cfg.routes {
        assert!(r.span.end as usize <= src.len(), "route span past the end");
    }
    if let Err(e) = compile(&cfg, &FunctionTable::with_core()) {
        check_error(&src, &e);
    }
});
