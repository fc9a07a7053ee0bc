//! The errors of the tls_mgm parser: each names the parameter and the value as written.

use thiserror::Error;

use crate::method::MethodError;

/// A refused tls_mgm parameter; every variant names the parameter and the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Not a tls_mgm parameter.
    #[error("tls_mgm: unknown parameter {param:?}")]
    UnknownParam {
        /// Parameter name.
        param: String,
    },
    /// A tls_mgm parameter this server does not implement.
    #[error("tls_mgm: parameter {param:?} = {value:?} is not supported: {reason}")]
    Unsupported {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// `[` without `]`, or `[]`.
    #[error("tls_mgm: {param} = {value:?}: malformed [domain] prefix")]
    BadPrefix {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// Nothing after the prefix.
    #[error("tls_mgm: {param} = {value:?}: empty value")]
    EmptyValue {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// The prefix names no declared domain.
    #[error("tls_mgm: {param} = {value:?}: TLS domain [{domain}] is not defined (declare it first with server_domain or client_domain)")]
    UnknownDomain {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The unknown name.
        domain: String,
    },
    /// A domain declared twice on the same side.
    #[error("tls_mgm: {param} = {value:?}: TLS domain [{domain}] is already defined")]
    DuplicateDomain {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The name.
        domain: String,
    },
    /// A domain name with characters that cannot be written in a prefix.
    #[error("tls_mgm: {param} = {value:?}: invalid domain name")]
    BadDomainName {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// Not an unsigned integer.
    #[error("tls_mgm: {param} = {value:?}: not a number")]
    BadNumber {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// A `match_ip_address` item that is not `*` or `ip:port`.
    #[error("tls_mgm: {param} = {value:?}: {item:?} is not \"*\" or ip:port")]
    BadAddress {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The item.
        item: String,
    },
    /// A `match_sip_domain` item that is not `*`, `none` or a host name pattern.
    #[error(
        "tls_mgm: {param} = {value:?}: {item:?} is not \"*\", \"none\" or a host name pattern"
    )]
    BadName {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The item.
        item: String,
    },
    /// A refused `tls_method`.
    #[error("tls_mgm: {param} = {value:?}: {source}")]
    Method {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// Why.
        source: MethodError,
    },
}
