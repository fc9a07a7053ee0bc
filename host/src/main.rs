//! `sipcore`: the server binary.
//!
//! ```text
//! sipcore -f sipcore.cfg      run the server
//! sipcore -c -f sipcore.cfg   check the configuration (and the modules it loads), then exit
//! ```
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// SIP server core with transport plugins (SIP over WebSocket and more).
#[derive(Parser, Debug)]
#[command(name = "sipcore", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(short = 'f', long = "config", default_value = "/etc/sipcore/sipcore.cfg")]
    config: PathBuf,
    /// Check the configuration and exit (0 when it is valid).
    #[arg(short = 'c', long = "check")]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = sipcore::app::Options {
        config: cli.config,
        check_only: cli.check,
    };
    match sipcore::app::run(opts) {
        Ok(()) => {
            sipcore::log::flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            sipcore::log::flush();
            eprintln!("sipcore: {e}");
            ExitCode::from(1)
        }
    }
}
