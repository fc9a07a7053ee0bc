//! `sipcore`: the server binary, and the client of its management interface.
//!
//! ```text
//! sipcore -f sipcore.cfg               run the server
//! sipcore -c -f sipcore.cfg            check the configuration (and the modules it loads), then exit
//! sipcore mi [-f cfg] CMD [ARGS...]    run an MI command on the running server, print the JSON answer
//! sipcore mi --url http://127.0.0.1:8888/mi ws_trace on
//! ```
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_CONFIG: &str = "/etc/sipcore/sipcore.cfg";

/// SIP server core with transport plugins (SIP over WebSocket and more).
#[derive(Parser, Debug)]
#[command(name = "sipcore", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(short = 'f', long = "config", default_value = DEFAULT_CONFIG, global = true)]
    config: PathBuf,
    /// Check the configuration and exit (0 when it is valid).
    #[arg(short = 'c', long = "check")]
    check: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a management (MI) command on the running server and print its JSON answer; the
    /// address comes from the configuration's mi_http_ip / mi_http_port / mi_http_root.
    Mi {
        /// MI URL instead of the configuration's, e.g. http://127.0.0.1:8888/mi
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// The command, e.g. ws_trace, ws_list, which.
        command: String,
        /// Its parameters, e.g. `on`.
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Mi {
            url,
            timeout,
            command,
            args,
        }) => mi(&cli.config, url, timeout, &command, args),
        None => serve(cli.config, cli.check),
    }
}

fn serve(config: PathBuf, check_only: bool) -> ExitCode {
    let opts = sipcore::app::Options { config, check_only };
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

fn mi(
    config: &std::path::Path,
    url: Option<String>,
    timeout: u64,
    command: &str,
    args: Vec<String>,
) -> ExitCode {
    let endpoint = match url {
        Some(u) => sipcore::app::MiEndpoint::from_url(&u),
        None => sipcore::app::MiEndpoint::from_config(config),
    };
    let endpoint = match endpoint {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sipcore mi: {e}");
            return ExitCode::from(2);
        }
    };
    match sipcore::mi::client::call(
        endpoint.addr,
        &endpoint.root,
        command,
        args,
        Duration::from_secs(timeout),
    ) {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
