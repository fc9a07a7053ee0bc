//! The canonical form of a definition: `parse(&def.to_string())` gives `def` back.

use crate::host::{is_dotted_digits, is_hostname};
use crate::params::{is_bare_name, is_keyword};
use crate::types::{Host, SocketDef, SocketSpec};
use std::fmt;

/// Write `host`, quoting a name that would not read back as the same name bare (a keyword
/// after `as`, or a hand-built name that is not a plain host name).
fn write_host(f: &mut fmt::Formatter<'_>, host: &Host, after_as: bool) -> fmt::Result {
    match host {
        Host::Name(n) if !is_hostname(n) || is_dotted_digits(n) || (after_as && is_keyword(n)) => {
            write!(f, "\"{n}\"")
        }
        h => write!(f, "{h}"),
    }
}

/// Write a `tag`/profile name, quoted unless it is a bare word that is not a keyword.
fn write_name(f: &mut fmt::Formatter<'_>, n: &str) -> fmt::Result {
    if is_bare_name(n) && !is_keyword(n) {
        f.write_str(n)
    } else {
        write!(f, "\"{n}\"")
    }
}

/// `proto:host[:ports] [as host[:ports]] [use_workers N] [tos N] [tag NAME]
/// [use_auto_scaling_profile NAME] [anycast] [frag] [reuse_port] [accept_subdomain]
/// [allow_proxy_protocol] [send_proxy_protocol]`, e.g.
/// `ws:[2001:db8::5]:8080 as 203.0.113.7:80 use_workers 4 tag public`.
impl fmt::Display for SocketDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.proto)?;
        write_host(f, &self.host, false)?;
        if let Some(p) = &self.ports {
            write!(f, ":{p}")?;
        }
        if let Some(a) = &self.advertised {
            f.write_str(" as ")?;
            write_host(f, &a.host, true)?;
            if let Some(p) = &a.ports {
                write!(f, ":{p}")?;
            }
        }
        if let Some(n) = self.workers {
            write!(f, " use_workers {n}")?;
        }
        if let Some(n) = self.tos {
            write!(f, " tos {n}")?;
        }
        if let Some(t) = &self.tag {
            f.write_str(" tag ")?;
            write_name(f, t)?;
        }
        if let Some(p) = &self.auto_scaling_profile {
            f.write_str(" use_auto_scaling_profile ")?;
            write_name(f, p)?;
        }
        let flags = [
            (self.anycast, " anycast"),
            (self.frag, " frag"),
            (self.reuse_port, " reuse_port"),
            (self.accept_subdomain, " accept_subdomain"),
            (self.proxy_protocol.allow, " allow_proxy_protocol"),
            (self.proxy_protocol.send, " send_proxy_protocol"),
        ];
        for (on, text) in flags {
            if on {
                f.write_str(text)?;
            }
        }
        Ok(())
    }
}

/// A single definition as [`SocketDef`] prints it; a bond as
/// `bond:NAME {"udp:10.0.0.1:5060", "tcp:10.0.0.1:5060"}` (members must then hold no quoted
/// host or name, which parsed members never do).
impl fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketSpec::Single(d) => write!(f, "{d}"),
            SocketSpec::Bond { name, members } => {
                write!(f, "bond:{name} {{")?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{m}\"")?;
                }
                f.write_str("}")
            }
        }
    }
}
