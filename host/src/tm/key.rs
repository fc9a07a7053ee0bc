//! The keys transactions are found by: [`ClientKey`] (RFC 3261 §17.1.3) for responses to the
//! requests this element sent, [`ServerKey`] (§17.2.3) for requests received, with the
//! RFC 2543 fallback for branches without the magic cookie, and the key of the INVITE a
//! CANCEL cancels (§9.2).

use std::borrow::Cow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};

use thiserror::Error;

use crate::sip::{Message, ParseError, BRANCH_MAGIC_COOKIE};

/// The keys' own hash, computed once when a key is made: foldhash with a per-process random
/// seed over the key's fields (the peers' branches and Call-IDs, so not a function an attacker
/// could aim collisions at). The tables then hash that number only: a lookup, and above all
/// the rehash of a table that grows, no longer reads every key's strings from the heap again
/// (4.7% of the server's CPU at 1,000 calls/s while the tables filled).
static KEY_HASH: LazyLock<foldhash::quality::RandomState> = LazyLock::new(Default::default);

/// Writes the hash computed at construction, whatever the fields (equal keys have equal
/// fields, hence equal hashes).
macro_rules! hash_by_cached {
    ($t:ty) => {
        impl Hash for $t {
            fn hash<H: Hasher>(&self, state: &mut H) {
                state.write_u64(self.hash);
            }
        }
    };
}

/// Why a message has no transaction key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// A header field the key is made of is missing or malformed.
    #[error("no transaction key: {0}")]
    Parse(#[from] ParseError),
    /// A server key was asked of a response.
    #[error("no server transaction key for a response")]
    NotARequest,
    /// The top Via has no branch; a client transaction always puts one there (§8.1.1.7).
    #[error("no branch in the top Via")]
    NoBranch,
}

/// The method a key names: the request's, except that an ACK names the INVITE's
/// transaction (§17.1.3, §17.2.3). The methods of RFC 3261 and its extensions are static
/// strings (no allocation per key); another method is kept as written.
fn key_method(method: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 13] = [
        "INVITE",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "MESSAGE",
        "SUBSCRIBE",
        "NOTIFY",
        "INFO",
        "UPDATE",
        "PRACK",
        "REFER",
        "PUBLISH",
    ];
    if method == "ACK" {
        return Cow::Borrowed("INVITE");
    }
    match KNOWN.iter().find(|&&k| k == method) {
        Some(&k) => Cow::Borrowed(k),
        None => Cow::Owned(method.to_owned()),
    }
}

/// A branch or a sent-by host in a key: shared, as every key is cloned into the tables that
/// find its transaction (a clone is a count, not a copy).
type Text = Arc<str>;

/// `host` in lower case (sent-by hosts compare case-insensitively, §17.2.3), copied once.
fn lower_host(host: &str) -> Text {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    }
}

/// A client transaction's key (RFC 3261 §17.1.3): the branch of the top Via and the CSeq
/// method. A response matches the transaction whose request carried the same branch in its
/// top Via and whose method is the CSeq method of the response (so a CANCEL and the INVITE it
/// cancels, which share the branch, are two transactions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientKey {
    branch: Text,
    method: Cow<'static, str>,
    /// [`KEY_HASH`] of the fields above.
    hash: u64,
}

hash_by_cached!(ClientKey);

impl ClientKey {
    /// The key of a request this element sends (its own Via on top) or of a response to one.
    pub fn of(msg: &Message) -> Result<Self, KeyError> {
        let branch = msg.top_branch()?.ok_or(KeyError::NoBranch)?;
        let method = match msg.method_str() {
            Some(m) => m,
            None => msg.cseq()?.method,
        };
        Ok(ClientKey::new(branch, method))
    }

    /// The key of a `method` request this element sends with `branch` in its Via (what
    /// [`ClientKey::of`] reads back from the request).
    pub fn new(branch: &str, method: &str) -> Self {
        let method = key_method(method);
        ClientKey {
            hash: KEY_HASH.hash_one((branch, &*method)),
            branch: branch.into(),
            method,
        }
    }

    /// The branch.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method (INVITE for an ACK).
    pub fn method(&self) -> &str {
        &self.method
    }
}

/// How a server transaction is identified (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Id {
    /// The branch starts with the magic cookie: branch and sent-by (host compared
    /// case-insensitively).
    Rfc3261 {
        branch: Text,
        host: Text,
        port: Option<u16>,
    },
    /// An RFC 2543 client: Request-URI, From tag, Call-ID, CSeq number, the top Via (transport,
    /// sent-by, branch if any) and, except for INVITE and ACK, the To tag.
    Rfc2543 {
        ruri: Box<str>,
        from_tag: Box<str>,
        call_id: Box<str>,
        seq: u32,
        transport: Box<str>,
        host: Text,
        port: Option<u16>,
        branch: Box<str>,
        to_tag: Option<Box<str>>,
    },
}

/// A server transaction's key (RFC 3261 §17.2.3).
///
/// With the magic cookie `z9hG4bK` in the top Via branch: the branch, the sent-by and the
/// method, ACK counting as INVITE. Without it (RFC 2543): the Request-URI, From tag, Call-ID,
/// CSeq number and method, top Via and To tag. An RFC 2543 ACK carries the To tag of the
/// response rather than the INVITE's, so the To tag is left out of INVITE (and ACK) keys and
/// [`ServerInvite::ack_matches`](super::ServerInvite::ack_matches) checks the ACK's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerKey {
    id: Id,
    method: Cow<'static, str>,
    /// [`KEY_HASH`] of the fields above.
    hash: u64,
}

hash_by_cached!(ServerKey);

impl ServerKey {
    /// The key of the transaction the received request `req` belongs to (a new one, or the
    /// one it retransmits or, for an ACK, acknowledges).
    pub fn of(req: &Message) -> Result<Self, KeyError> {
        let method = req.method_str().ok_or(KeyError::NotARequest)?;
        Self::with_method(req, key_method(method))
    }

    /// The key of the transaction a received CANCEL cancels (§9.2): the CANCEL's key with
    /// method INVITE, matched "using the procedures of Section 17.2.3, except that the method
    /// is not compared" (a CANCEL of a non-INVITE request has no effect, so only INVITEs are
    /// looked for).
    pub fn of_cancelled(cancel: &Message) -> Result<Self, KeyError> {
        cancel.method_str().ok_or(KeyError::NotARequest)?;
        Self::with_method(cancel, Cow::Borrowed("INVITE"))
    }

    fn with_method(req: &Message, method: Cow<'static, str>) -> Result<Self, KeyError> {
        let via = req.top_via()?;
        let host = lower_host(via.host());
        let id = match via.branch() {
            Some(b) if b.starts_with(BRANCH_MAGIC_COOKIE) => Id::Rfc3261 {
                branch: b.into(),
                host,
                port: via.port(),
            },
            branch => {
                let to_tag = if &*method == "INVITE" {
                    None
                } else {
                    req.to_tag_param()?.flatten().map(Into::into)
                };
                Id::Rfc2543 {
                    ruri: req.ruri().unwrap_or("").into(),
                    from_tag: req.from_tag_param()?.flatten().unwrap_or("").into(),
                    call_id: req
                        .call_id()
                        .ok_or(ParseError::MissingHeader("Call-ID"))?
                        .into(),
                    seq: req.cseq()?.seq,
                    transport: via.transport().to_ascii_uppercase().into_boxed_str(),
                    host,
                    port: via.port(),
                    branch: branch.unwrap_or("").into(),
                    to_tag,
                }
            }
        };
        let hash = KEY_HASH.hash_one((&id, &*method));
        Ok(ServerKey { id, method, hash })
    }

    /// Whether the key was made from an RFC 3261 branch (magic cookie present).
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.id, Id::Rfc3261 { .. })
    }

    /// The method (INVITE for an ACK).
    pub fn method(&self) -> &str {
        &self.method
    }
}
