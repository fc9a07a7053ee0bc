//! Authentication (issue 12), pure parts: digest computation ([`digest`]), password guessing
//! protection ([`guard`]), bearer JSON Web Tokens ([`jwt`], RFC 8898), the Digest
//! credentials grammar ([`credentials`]) and self-verifying nonces with replay detection
//! ([`nonce`]), and the authorize decision and challenges ([`verify`]), and the interface to a user store
//! that answers off the I/O workers ([`store`]). No I/O: time and keys are passed in. The script functions
//! (`www_authorize()`, ...) and the user store build on these.
pub mod cache;
pub mod credentials;
pub mod digest;
pub mod guard;
pub mod jwt;
mod jwt_key;
pub mod nonce;
pub mod store;
pub mod verify;
