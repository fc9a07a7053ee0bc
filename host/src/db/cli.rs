//! `sipcore user add|password|rm|list` (opensips-cli's `user` subcommands) against the
//! `db_url` of a configuration: blocking, for an operator's shell.
use super::config::AuthDbConfig;
use super::error::DbError;
use super::store::{split_aor, UserStore};
use std::io::{BufRead, IsTerminal};
use std::time::Duration;

/// How long a command waits for the server's (or another command's) lock on the database.
const BUSY: Duration = Duration::from_secs(5);

/// A `sipcore user` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCmd {
    /// Add `user@domain`.
    Add {
        /// `user@domain`.
        aor: String,
        /// `--password`; else stdin (not a terminal) or a prompt.
        password: Option<String>,
        /// `--store-password`: keep the clear password too (only the HA1s by default).
        store_password: bool,
    },
    /// Change the password of `user@domain`.
    Password {
        /// `user@domain`.
        aor: String,
        /// `--password`; else stdin or a prompt.
        password: Option<String>,
        /// `--store-password`.
        store_password: bool,
    },
    /// Remove `user@domain`.
    Rm {
        /// `user@domain`.
        aor: String,
    },
    /// Print every user, `user@domain` per line.
    List,
}

/// Why a command failed, and its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The operation failed: the user exists, does not exist, the database failed (exit 1).
    #[error(transparent)]
    Db(#[from] DbError),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Db(_) => 1,
        }
    }
}

/// `user@domain`, or a usage error.
fn parse_aor(text: &str) -> Result<(&str, &str), CliError> {
    split_aor(text).map_err(|e| CliError::Usage(e.to_string()))
}

/// Run `cmd` against `cfg`'s database; the text to print on success.
pub fn run(cfg: &AuthDbConfig, cmd: UserCmd) -> Result<String, CliError> {
    let url = cfg.db_url.as_ref().ok_or_else(|| {
        CliError::Usage(
            "the configuration names no user database: modparam(\"auth_db\", \"db_url\", \"sqlite://...\") or db_default_url".into(),
        )
    })?;
    let cols = cfg.columns()?;
    match cmd {
        UserCmd::Add {
            aor,
            password,
            store_password,
        } => {
            let (user, domain) = parse_aor(&aor)?;
            let store = UserStore::open(url, &cols, BUSY)?;
            if store.exists(user, domain)? {
                return Err(DbError::UserExists {
                    user: user.into(),
                    domain: domain.into(),
                }
                .into());
            }
            let pw = read_password(password)?;
            store.add(user, domain, &pw, store_password)?;
            Ok(format!("added {user}@{domain}\n"))
        }
        UserCmd::Password {
            aor,
            password,
            store_password,
        } => {
            let (user, domain) = parse_aor(&aor)?;
            let store = UserStore::open_existing(url, &cols, BUSY)?;
            if !store.exists(user, domain)? {
                return Err(DbError::NoSuchUser {
                    user: user.into(),
                    domain: domain.into(),
                }
                .into());
            }
            let pw = read_password(password)?;
            store.set_password(user, domain, &pw, store_password)?;
            Ok(format!("password of {user}@{domain} changed\n"))
        }
        UserCmd::Rm { aor } => {
            let (user, domain) = parse_aor(&aor)?;
            UserStore::open_existing(url, &cols, BUSY)?.remove(user, domain)?;
            Ok(format!("removed {user}@{domain}\n"))
        }
        UserCmd::List => {
            // Created when missing, as the server does: a fresh install lists no users.
            let users = UserStore::open(url, &cols, BUSY)?.list()?;
            Ok(users.iter().map(|(u, d)| format!("{u}@{d}\n")).collect())
        }
    }
}

/// The password: given, else the first line of stdin when it is not a terminal, else asked
/// twice on the terminal without echo.
fn read_password(given: Option<String>) -> Result<String, CliError> {
    let pw = match given {
        Some(p) => p,
        None if !std::io::stdin().is_terminal() => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                CliError::Usage(format!("cannot read the password from stdin: {e}"))
            })?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        None => {
            let ask = |prompt: &str| {
                rpassword::prompt_password(prompt)
                    .map_err(|e| CliError::Usage(format!("cannot read the password: {e}")))
            };
            let first = ask("Password: ")?;
            if ask("Repeat password: ")? != first {
                return Err(CliError::Usage("the passwords differ".into()));
            }
            first
        }
    };
    if pw.is_empty() {
        return Err(CliError::Usage("empty password".into()));
    }
    Ok(pw)
}
