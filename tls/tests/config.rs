//! The tls_mgm parser on real OpenSIPS configuration lines (OpenSIPS
//! `examples/templates/loadbalancer.m4`, the tls_mgm README's examples, issue 11's lines), and
//! its errors.

use std::net::SocketAddr;
use std::path::PathBuf;

use sipcore_tls::filter::{AddrFilter, NameFilter};
use sipcore_tls::{ConfigError, MethodError, Side, TlsConfig, TlsMethod, TlsVersion};

fn parse(lines: &[(&str, &str)]) -> Result<TlsConfig, ConfigError> {
    TlsConfig::from_params(lines.iter().copied())
}

#[test]
fn opensips_loadbalancer_template() {
    // The modparam lines of OpenSIPS examples/templates/loadbalancer.m4, unchanged.
    let cfg = parse(&[
        ("server_domain", "default"),
        ("match_ip_address", "[default]*"),
        ("verify_cert", "[default]1"),
        ("require_cert", "[default]0"),
        ("tls_method", "[default]TLSv1"),
        (
            "certificate",
            "[default]/etc/opensips/tls/user/user-cert.pem",
        ),
        (
            "private_key",
            "[default]/etc/opensips/tls/user/user-privkey.pem",
        ),
        ("ca_list", "[default]/etc/opensips/tls/user/user-calist.pem"),
    ])
    .unwrap();
    assert_eq!(cfg.server.len(), 1);
    let d = &cfg.server[0];
    assert_eq!((d.name.as_str(), d.side), ("default", Side::Server));
    assert_eq!(d.match_addresses, vec![AddrFilter::Any]);
    assert_eq!(d.match_names, vec![NameFilter::Any]);
    assert!(d.verify_cert && !d.require_cert);
    assert_eq!(
        d.method,
        TlsMethod {
            min: TlsVersion::Tls1_2,
            max: TlsVersion::Tls1_3
        }
    );
    assert_eq!(
        d.certificate,
        Some(PathBuf::from("/etc/opensips/tls/user/user-cert.pem"))
    );
    assert_eq!(
        d.ca_list,
        Some(PathBuf::from("/etc/opensips/tls/user/user-calist.pem"))
    );
    assert_eq!(cfg.warnings.len(), 1);
    assert!(
        cfg.warnings[0]
            .message
            .contains("TLSv1_2-TLSv1_3 used instead"),
        "{:?}",
        cfg.warnings
    );
    // The default client domain got the same [default] lines.
    assert_eq!(cfg.client.len(), 1);
    assert_eq!(cfg.client[0].ca_list, d.ca_list);
}

#[test]
fn issue_11_lines_and_defaults() {
    let cfg = parse(&[
        ("certificate", "[default]/etc/sipcore/tls/cert.pem"),
        ("private_key", "[default]/etc/sipcore/tls/key.pem"),
        ("ca_list", "[default]/etc/sipcore/tls/ca.pem"),
        ("tls_method", "[default]TLSv1_2-"),
    ])
    .unwrap();
    let d = &cfg.server[0];
    assert_eq!(
        d.private_key,
        Some(PathBuf::from("/etc/sipcore/tls/key.pem"))
    );
    // Our server defaults: no client certificate asked; TLS 1.2-1.3; OpenSSL cipher defaults
    // replaced by Mozilla intermediate at build time.
    assert!(!d.verify_cert && !d.require_cert);
    assert_eq!(d.ciphers_list, None);
    assert!(cfg.warnings.is_empty());
    assert!(cfg.client[0].verify_cert);

    // No prefix is the default domain too (OpenSIPS 2.x form).
    let cfg = parse(&[("certificate", "/c.pem"), ("private_key", "/k.pem")]).unwrap();
    assert_eq!(cfg.server[0].certificate, Some(PathBuf::from("/c.pem")));

    // The default server domain may be declared after its certificate was given.
    let cfg = parse(&[("certificate", "/c.pem"), ("server_domain", "default")]).unwrap();
    assert_eq!(cfg.server.len(), 1);

    // Nothing at all: only the default client domain (verified against the system roots).
    let cfg = parse(&[]).unwrap();
    assert!(cfg.server.is_empty());
    assert_eq!(cfg.client.len(), 1);
    assert!(cfg.client[0].verify_cert && cfg.client[0].ca_list.is_none());
}

#[test]
fn opensips_readme_virtual_domains() {
    let cfg = parse(&[
        ("server_domain", "dom1"),
        ("match_ip_address", "[dom1]10.0.0.10:5061"),
        ("match_sip_domain", "[dom1]atlanta.com"),
        ("certificate", "[dom1]/certs/atlanta.com/cert.pem"),
        ("private_key", "[dom1]/certs/atlanta.com/privkey.pem"),
        ("ca_list", "[dom1]/certs/wellknownCAs"),
        ("tls_method", "[dom1]TLSv1_2"),
        ("verify_cert", "[dom1]1"),
        ("require_cert", "[dom1]1"),
        ("client_domain", "dom6"),
        ("match_ip_address", "[dom6]1.2.3.4:6677"),
        ("match_sip_domain", "[dom6]*"),
        ("verify_cert", "[dom6]0"),
        ("ciphers_list", "[dom6]ECDHE-ECDSA-AES256-GCM-SHA384"),
        ("dh_params", "[dom1]/etc/pki/CA/dh2048.pem"),
        ("ec_curve", "[dom1]prime256v1"),
        ("crl_dir", "[dom1]/certs/crls"),
        ("crl_check_all", "[dom1]1"),
        ("match_sip_domain", "[dom1]foo.com, bar.com, *.baz.com"),
    ])
    .unwrap();
    assert_eq!(
        cfg.server.len(),
        1,
        "no default server domain without a certificate"
    );
    let d1 = &cfg.server[0];
    let addr: SocketAddr = "10.0.0.10:5061".parse().unwrap();
    assert_eq!(d1.match_addresses, vec![AddrFilter::Exact(addr)]);
    assert_eq!(d1.match_names.len(), 4, "repeated match_sip_domain appends");
    assert_eq!(d1.match_names[3], NameFilter::Pattern("*.baz.com".into()));
    assert!(d1.verify_cert && d1.require_cert && d1.crl_check_all);
    assert_eq!(d1.ec_curve.as_deref(), Some("prime256v1"));
    assert_eq!(cfg.client.len(), 2);
    let d6 = &cfg.client[0];
    assert_eq!(d6.name, "dom6");
    assert!(!d6.verify_cert);
    assert_eq!(
        d6.ciphers_list.as_deref(),
        Some("ECDHE-ECDSA-AES256-GCM-SHA384")
    );
    assert_eq!(cfg.client[1].name, "default");
    // verify_cert 0 on a client domain is accepted with a warning for the log.
    let lab: Vec<_> = cfg
        .warnings
        .iter()
        .filter(|w| w.param == "verify_cert")
        .collect();
    assert_eq!(lab.len(), 1);
    assert!(
        lab[0].message.contains("[dom6]") && lab[0].message.contains("lab"),
        "{lab:?}"
    );
}

#[test]
fn opensips_2x_name_equals_address_form() {
    let cfg = parse(&[
        ("server_domain", "sv=10.0.0.1:5061"),
        ("client_domain", "gw=[2001:db8::1]:5061"),
        ("certificate", "[sv]/c.pem"),
    ])
    .unwrap();
    assert_eq!(
        cfg.server[0].match_addresses,
        vec![AddrFilter::Exact("10.0.0.1:5061".parse().unwrap())]
    );
    assert_eq!(
        cfg.client[0].match_addresses,
        vec![AddrFilter::Exact("[2001:db8::1]:5061".parse().unwrap())]
    );
}

#[test]
fn errors_name_the_parameter_and_the_value() {
    let err = |lines: &[(&str, &str)]| parse(lines).unwrap_err();
    let e = err(&[("certificate", "[nodom]/c.pem")]);
    assert!(matches!(&e, ConfigError::UnknownDomain { domain, .. } if domain == "nodom"));
    assert!(e.to_string().contains("certificate") && e.to_string().contains("[nodom]/c.pem"));

    let e = err(&[("server_domain", "d"), ("server_domain", "d")]);
    assert!(
        matches!(&e, ConfigError::DuplicateDomain { domain, .. } if domain == "d"),
        "{e}"
    );
    let e = err(&[("server_domain", "default"), ("server_domain", "default")]);
    assert!(matches!(e, ConfigError::DuplicateDomain { .. }));
    // The same name once on each side is allowed, as in OpenSIPS.
    parse(&[("server_domain", "d"), ("client_domain", "d")]).unwrap();

    let e = err(&[("tls_method", "[default]TLSv1_2-TLSv1_3-")]);
    assert!(matches!(
        &e,
        ConfigError::Method {
            source: MethodError::MalformedRange,
            ..
        }
    ));
    assert!(e.to_string().contains("tls_method") && e.to_string().contains("TLSv1_2-TLSv1_3-"));
    let e = err(&[("tls_method", "TLSv1_1-TLSv1")]);
    assert!(e.to_string().contains("empty TLS method range"), "{e}");
    let e = err(&[("tls_method", "[default]TLSv2")]);
    assert!(
        e.to_string().contains("unknown TLS method \"TLSv2\""),
        "{e}"
    );

    let e = err(&[("certificate", "[default/c.pem")]);
    assert!(matches!(e, ConfigError::BadPrefix { .. }), "{e}");
    let e = err(&[("certificate", "[]/c.pem")]);
    assert!(matches!(e, ConfigError::BadPrefix { .. }), "{e}");
    let e = err(&[("certificate", "[default]")]);
    assert!(matches!(e, ConfigError::EmptyValue { .. }), "{e}");
    let e = err(&[("verify_cert", "[default]yes")]);
    assert_eq!(
        e.to_string(),
        "tls_mgm: verify_cert = \"[default]yes\": not a number"
    );
    let e = err(&[(
        "match_ip_address",
        "[default]10.0.0.1:5061, sip.example.com:5061",
    )]);
    assert!(matches!(&e, ConfigError::BadAddress { item, .. } if item == "sip.example.com:5061"));
    let e = err(&[("match_sip_domain", "[default]good.com, bad/name")]);
    assert!(matches!(&e, ConfigError::BadName { item, .. } if item == "bad/name"));
    let e = err(&[("server_domain", "a b")]);
    assert!(matches!(e, ConfigError::BadDomainName { .. }));
    let e = err(&[("server_domain", "x=10.0.0.1")]);
    assert!(matches!(e, ConfigError::BadAddress { .. }), "{e}");
    let e = err(&[("tls_handshake_timeout", "100")]);
    assert!(matches!(e, ConfigError::UnknownParam { .. }));
    let e = err(&[("db_url", "mysql://x")]);
    assert!(matches!(e, ConfigError::Unsupported { .. }), "{e}");
    let e = err(&[("tls_library", "wolfssl")]);
    assert!(matches!(e, ConfigError::Unsupported { .. }), "{e}");
    parse(&[
        ("tls_library", "openssl"),
        ("client_sip_domain_avp", "tls_sip_dom"),
    ])
    .unwrap();
}

#[test]
fn is_param_routes_tls_mgm_names() {
    for p in [
        "server_domain",
        "certificate",
        "match_sip_domain",
        "tls_method",
        "ec_curve",
    ] {
        assert!(TlsConfig::is_param(p), "{p}");
    }
    assert!(!TlsConfig::is_param("ws_port"));
}
