//! `sipcore`: the server binary, and the client of its management interface.
//!
//! ```text
//! sipcore -f sipcore.cfg               run the server
//! sipcore -c -f sipcore.cfg            check the configuration (and the modules it loads), then exit
//! sipcore mi [-f cfg] CMD [ARGS...]    run an MI command on the running server, print the JSON answer
//! sipcore mi --url http://127.0.0.1:8888/mi ws_trace on
//! sipcore user add alice@example.com [--password PW] [--store-password] [-f cfg]
//! sipcore user password alice@example.com [--password PW]
//! sipcore user rm alice@example.com
//! sipcore user list
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
    /// Manage the users of the configuration's auth_db database (db_url): add, password, rm,
    /// list. Passwords come from --password, else stdin when it is not a terminal, else a
    /// prompt.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add a user (only its HA1s are stored unless --store-password).
    Add {
        /// user@domain (the domain is the digest realm).
        aor: String,
        /// The password (else stdin or a prompt; visible to other local users in `ps`).
        #[arg(long)]
        password: Option<String>,
        /// Also store the password in clear (the `password` column).
        #[arg(long)]
        store_password: bool,
    },
    /// Change a user's password.
    Password {
        /// user@domain.
        aor: String,
        /// The new password (else stdin or a prompt).
        #[arg(long)]
        password: Option<String>,
        /// Also store the password in clear.
        #[arg(long)]
        store_password: bool,
    },
    /// Remove a user.
    Rm {
        /// user@domain.
        aor: String,
    },
    /// List the users, user@domain per line.
    List,
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
        Some(Cmd::User { command }) => user(&cli.config, command),
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

fn user(config: &std::path::Path, command: UserCmd) -> ExitCode {
    use sipcore::db::cli::UserCmd as C;
    let cmd = match command {
        UserCmd::Add {
            aor,
            password,
            store_password,
        } => C::Add {
            aor,
            password,
            store_password,
        },
        UserCmd::Password {
            aor,
            password,
            store_password,
        } => C::Password {
            aor,
            password,
            store_password,
        },
        UserCmd::Rm { aor } => C::Rm { aor },
        UserCmd::List => C::List,
    };
    let cfg = match sipcore::app::auth_db_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sipcore user: {e}");
            return ExitCode::from(2);
        }
    };
    match sipcore::db::cli::run(&cfg, cmd) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sipcore user: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
