//! Domain selection (OpenSIPS tls_mgm README, "match_ip_address", "match_sip_domain";
//! `tls_find_domain_by_filters()` in `modules/tls_mgm/tls_domain.c`).
//!
//! A server domain is chosen for a local socket and the SNI name received (RFC 6066 §3), a
//! client domain for a destination socket and the destination host name. Among the domains
//! whose filters both match, the most specific host-name match wins, then the most specific
//! address match (`ip:port` over `*`), then a declared domain over the default one, then
//! declaration order.
//!
//! Where we differ: OpenSIPS first picks the domains listed for the exact address and, if none
//! of those matches the name, refuses the connection without looking at the `*`-address
//! domains; here every domain is a candidate, so an unknown SNI on an address that has its own
//! domains still gets the default domain.

use std::net::SocketAddr;

use crate::config::DomainConfig;
use crate::filter::{addr_rank, name_rank};

/// The index in `domains` of the best match for `addr` and `name`, or `None` when no domain's
/// filters match (e.g. every domain restricted to other addresses, or an SNI name that no
/// domain lists while none has `*`).
pub fn select<'a, I>(domains: I, addr: SocketAddr, name: Option<&str>) -> Option<usize>
where
    I: IntoIterator<Item = &'a DomainConfig>,
{
    domains
        .into_iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let n = name_rank(&d.match_names, name)?;
            let a = addr_rank(&d.match_addresses, addr)?;
            Some(((n, a, !d.is_default(), std::cmp::Reverse(i)), i))
        })
        .max_by_key(|(key, _)| *key)
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsConfig;

    fn names(cfg: &[(&str, &str)]) -> TlsConfig {
        TlsConfig::from_params(cfg.iter().copied()).unwrap()
    }

    fn pick(domains: &[DomainConfig], addr: &str, name: Option<&str>) -> Option<String> {
        select(domains, addr.parse().unwrap(), name).map(|i| domains[i].name.clone())
    }

    /// The virtual-hosting example of the OpenSIPS tls_mgm README (dom1..dom3 server domains).
    #[test]
    fn readme_virtual_hosting_example() {
        let cfg = names(&[
            ("server_domain", "dom1"),
            ("match_ip_address", "[dom1]10.0.0.10:5061"),
            ("match_sip_domain", "[dom1]atlanta.com"),
            ("server_domain", "dom2"),
            ("match_ip_address", "[dom2]10.0.0.10:5061"),
            ("match_sip_domain", "[dom2]biloxi.com"),
            ("server_domain", "dom3"),
            ("match_ip_address", "[dom3]10.0.0.10:5061"),
            ("match_sip_domain", "[dom3]none"),
            ("certificate", "[default]/etc/sipcore/tls/cert.pem"),
        ]);
        let s = &cfg.server;
        assert_eq!(
            pick(s, "10.0.0.10:5061", Some("atlanta.com")).as_deref(),
            Some("dom1")
        );
        assert_eq!(
            pick(s, "10.0.0.10:5061", Some("BILOXI.COM")).as_deref(),
            Some("dom2")
        );
        assert_eq!(pick(s, "10.0.0.10:5061", None).as_deref(), Some("dom3"));
        // Unknown SNI: the default domain (OpenSIPS would refuse it).
        assert_eq!(
            pick(s, "10.0.0.10:5061", Some("other.org")).as_deref(),
            Some("default")
        );
        // Another local address: only the default matches.
        assert_eq!(
            pick(s, "10.0.0.11:5061", Some("atlanta.com")).as_deref(),
            Some("default")
        );
    }

    #[test]
    fn specific_names_beat_wildcards_and_addresses_break_ties() {
        let cfg = names(&[
            ("server_domain", "wide"),
            ("match_sip_domain", "[wide]*.example.com"),
            ("server_domain", "narrow"),
            ("match_sip_domain", "[narrow]*.a.example.com"),
            ("server_domain", "exact"),
            ("match_sip_domain", "[exact]sip.a.example.com"),
            ("server_domain", "byaddr"),
            ("match_ip_address", "[byaddr]192.0.2.1:443"),
        ]);
        let s = &cfg.server;
        assert_eq!(
            pick(s, "192.0.2.9:443", Some("sip.a.example.com")).as_deref(),
            Some("exact")
        );
        assert_eq!(
            pick(s, "192.0.2.9:443", Some("x.a.example.com")).as_deref(),
            Some("narrow")
        );
        assert_eq!(
            pick(s, "192.0.2.9:443", Some("x.example.com")).as_deref(),
            Some("wide")
        );
        assert_eq!(
            pick(s, "192.0.2.1:443", Some("other.org")).as_deref(),
            Some("byaddr")
        );
        // No default server domain configured and no filter matching: nothing.
        assert_eq!(pick(s, "192.0.2.9:443", Some("other.org")), None);
    }

    #[test]
    fn client_domains_by_destination_and_host() {
        let cfg = names(&[
            ("client_domain", "gw=1.2.3.4:6677"),
            ("verify_cert", "[gw]0"),
            ("client_domain", "atlanta"),
            ("match_sip_domain", "[atlanta]atlanta.com"),
        ]);
        let c = &cfg.client;
        assert_eq!(pick(c, "1.2.3.4:6677", None).as_deref(), Some("gw"));
        assert_eq!(
            pick(c, "5.6.7.8:5061", Some("atlanta.com")).as_deref(),
            Some("atlanta")
        );
        assert_eq!(
            pick(c, "5.6.7.8:5061", Some("example.org")).as_deref(),
            Some("default")
        );
    }
}
