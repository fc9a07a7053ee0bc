//! Reading the PEM files a domain names, with errors that name the domain, the parameter, the
//! file and the OS's or OpenSSL's reason (a missing, unreadable or mismatched certificate or key
//! must stop startup with a message the operator can act on).

use std::path::{Path, PathBuf};

use openssl::dh::Dh;
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Params, Private};
use openssl::x509::X509;
use thiserror::Error;

/// Why a domain's OpenSSL context could not be built.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("TLS domain [{domain}]: {param} {path:?}: {reason}")]
    File {
        /// Domain name.
        domain: String,
        /// Parameter that named the file.
        param: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        reason: std::io::Error,
    },
    /// The file was read but OpenSSL refused its content.
    #[error("TLS domain [{domain}]: {param} {path:?}: {reason}")]
    Pem {
        /// Domain name.
        domain: String,
        /// Parameter that named the file.
        param: &'static str,
        /// The file.
        path: PathBuf,
        /// OpenSSL's reason (its error stack), or ours when OpenSSL found nothing to load.
        reason: String,
    },
    /// The private key is not the certificate's.
    #[error(
        "TLS domain [{domain}]: private_key {key:?} does not match certificate {cert:?}: {reason}"
    )]
    KeyMismatch {
        /// Domain name.
        domain: String,
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// OpenSSL's reason.
        reason: ErrorStack,
    },
    /// A required parameter is missing.
    #[error("TLS domain [{domain}]: {what}")]
    Missing {
        /// Domain name.
        domain: String,
        /// What is missing and why it is needed.
        what: &'static str,
    },
    /// OpenSSL refused a setting (cipher list, curve, protocol range...).
    #[error("TLS domain [{domain}]: {param} {value:?}: {reason}")]
    Setting {
        /// Domain name.
        domain: String,
        /// Parameter.
        param: &'static str,
        /// Its value.
        value: String,
        /// OpenSSL's reason.
        reason: ErrorStack,
    },
}

/// What a loader needs to name in its errors.
pub(crate) struct Loader<'a> {
    pub(crate) domain: &'a str,
}

impl Loader<'_> {
    fn read(&self, param: &'static str, path: &Path) -> Result<Vec<u8>, LoadError> {
        std::fs::read(path).map_err(|reason| LoadError::File {
            domain: self.domain.to_string(),
            param,
            path: path.to_path_buf(),
            reason,
        })
    }

    fn pem_err(&self, param: &'static str, path: &Path, reason: String) -> LoadError {
        LoadError::Pem {
            domain: self.domain.to_string(),
            param,
            path: path.to_path_buf(),
            reason,
        }
    }

    /// A certificate file: the leaf, then its chain. At least one certificate.
    pub(crate) fn certs(&self, param: &'static str, path: &Path) -> Result<Vec<X509>, LoadError> {
        let pem = self.read(param, path)?;
        let certs =
            X509::stack_from_pem(&pem).map_err(|e| self.pem_err(param, path, e.to_string()))?;
        if certs.is_empty() {
            return Err(self.pem_err(param, path, "no PEM certificate in the file".into()));
        }
        Ok(certs)
    }

    /// A private key (PKCS#8, PKCS#1 or SEC1 PEM; no passphrase).
    pub(crate) fn key(&self, path: &Path) -> Result<PKey<Private>, LoadError> {
        let pem = self.read("private_key", path)?;
        PKey::private_key_from_pem(&pem)
            .map_err(|e| self.pem_err("private_key", path, e.to_string()))
    }

    /// Finite-field DH parameters.
    pub(crate) fn dh(&self, path: &Path) -> Result<Dh<Params>, LoadError> {
        let pem = self.read("dh_params", path)?;
        Dh::params_from_pem(&pem).map_err(|e| self.pem_err("dh_params", path, e.to_string()))
    }

    /// A directory parameter must name a directory.
    pub(crate) fn dir(&self, param: &'static str, path: &Path) -> Result<(), LoadError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(self.pem_err(param, path, "not a directory".into())),
            Err(reason) => Err(LoadError::File {
                domain: self.domain.to_string(),
                param,
                path: path.to_path_buf(),
                reason,
            }),
        }
    }

    /// Wraps an OpenSSL refusal of a setting.
    pub(crate) fn setting(
        &self,
        param: &'static str,
        value: &str,
        reason: ErrorStack,
    ) -> LoadError {
        LoadError::Setting {
            domain: self.domain.to_string(),
            param,
            value: value.to_string(),
            reason,
        }
    }

    /// A required parameter is missing.
    pub(crate) fn missing(&self, what: &'static str) -> LoadError {
        LoadError::Missing {
            domain: self.domain.to_string(),
            what,
        }
    }
}
