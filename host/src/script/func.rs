//! The function registry: script function names → [`FuncId`] with their argument specs.
//! The host fills it before compiling; the engine runs `xlog` and `is_method` itself and
//! hands every other call to [`super::Env::call`].
use std::collections::HashMap;

/// A registered function, as the host knows it at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u16);

impl FuncId {
    /// `xlog([level,] format)`: run by the engine (output through [`super::Env::log`]).
    pub const XLOG: FuncId = FuncId(0);
    /// `sl_send_reply(code, reason)`: code is an Int, reason a rendered Format.
    pub const SL_SEND_REPLY: FuncId = FuncId(1);
    /// `is_method("INVITE|REGISTER")`: run by the engine against `$rm`.
    pub const IS_METHOD: FuncId = FuncId(2);
    /// `forward()` / `forward("uri")`.
    pub const FORWARD: FuncId = FuncId(3);
    /// `t_relay()`.
    pub const T_RELAY: FuncId = FuncId(4);
    /// `save("location")`: registrar (RFC 3261 §10.3).
    pub const SAVE: FuncId = FuncId(5);
    /// `lookup("location")`: registrar lookup, sets the destination.
    pub const LOOKUP: FuncId = FuncId(6);
    /// `record_route()` (RFC 3261 §16.6 step 4).
    pub const RECORD_ROUTE: FuncId = FuncId(7);
    /// `loose_route()` (RFC 3261 §16.4).
    pub const LOOSE_ROUTE: FuncId = FuncId(8);
    /// `has_totag()`.
    pub const HAS_TOTAG: FuncId = FuncId(9);
    /// `mf_process_maxfwd_header(limit)` (RFC 3261 §16.3 step 3).
    pub const MF_PROCESS_MAXFWD: FuncId = FuncId(10);
    /// `append_hf("Name: value\r\n")`.
    pub const APPEND_HF: FuncId = FuncId(11);
    /// `remove_hf("Name")`.
    pub const REMOVE_HF: FuncId = FuncId(12);
    /// `is_present_hf("Name")`.
    pub const IS_PRESENT_HF: FuncId = FuncId(13);
    /// `sanity_check()` (Kamailio): full RFC 3261 check, answers 400/505 itself on failure.
    pub const SANITY_CHECK: FuncId = FuncId(14);
    /// `sipmsg_validate()` (OpenSIPS sipmsgops): the same check, no reply.
    pub const SIPMSG_VALIDATE: FuncId = FuncId(15);
    /// `www_challenge(realm[, qop[, algorithms]])` (OpenSIPS auth): 401 with a challenge.
    pub const WWW_CHALLENGE: FuncId = FuncId(16);
    /// `proxy_challenge(realm[, qop[, algorithms]])`: 407 with a challenge.
    pub const PROXY_CHALLENGE: FuncId = FuncId(17);
    /// `www_authorize(realm, table)` (OpenSIPS auth_db): checks `Authorization`.
    pub const WWW_AUTHORIZE: FuncId = FuncId(18);
    /// `proxy_authorize(realm, table)`: checks `Proxy-Authorization`.
    pub const PROXY_AUTHORIZE: FuncId = FuncId(19);
    /// `consume_credentials()`: the used credentials are not forwarded.
    pub const CONSUME_CREDENTIALS: FuncId = FuncId(20);
    /// `check_from()` (OpenSIPS `db_check_from`): the From URI is the authorized user's.
    pub const CHECK_FROM: FuncId = FuncId(21);
    /// `check_to()` (OpenSIPS `db_check_to`): the To URI is the authorized user's.
    pub const CHECK_TO: FuncId = FuncId(22);
    /// `pike_check_req()` (OpenSIPS pike): 1 when the source may go on, -2 when this request
    /// makes it blocked, -1 while it is blocked.
    pub const PIKE_CHECK_REQ: FuncId = FuncId(23);
    /// `jwt_script_authorize(token, key[, out_decoded[, out_user]])` (OpenSIPS auth_jwt):
    /// checks a bearer JSON Web Token (RFC 8898); 1 valid, -1 invalid, -2 undecodable.
    pub const JWT_SCRIPT_AUTHORIZE: FuncId = FuncId(24);
    /// `t_check_trans()` (OpenSIPS tm): for a CANCEL, whether the INVITE it cancels has a
    /// transaction here (§9.2); for another request, whether it belongs to one (§17.2.3).
    pub const T_CHECK_TRANS: FuncId = FuncId(25);
    /// `t_reply(code, reason)` (OpenSIPS tm): a reply through the request's server
    /// transaction (made if there is none), which answers its retransmissions.
    pub const T_REPLY: FuncId = FuncId(26);
    /// `t_on_failure(route)` (OpenSIPS tm): `failure_route[route]` runs when every branch of
    /// the transaction `t_relay()` makes ended without a 2xx. The route is resolved when the
    /// script is compiled; the host receives its index ([`super::RouteRef::index`]).
    pub const T_ON_FAILURE: FuncId = FuncId(27);
    /// `t_on_reply(route)` (OpenSIPS tm): `onreply_route[route]` runs for each response of the
    /// transaction's branches (route index as for `t_on_failure`).
    pub const T_ON_REPLY: FuncId = FuncId(28);
    /// `t_on_branch(route)` (OpenSIPS tm): `branch_route[route]` runs for each branch before
    /// it goes out (route index as for `t_on_failure`).
    pub const T_ON_BRANCH: FuncId = FuncId(29);
    /// `t_check_status(re)` (OpenSIPS tm): whether the reply code (`$T_reply_code` in a
    /// failure route, `$rs` in a reply route) matches the regular expression, checked when the
    /// script is compiled.
    pub const T_CHECK_STATUS: FuncId = FuncId(30);
    /// `t_newtran()` (OpenSIPS tm): the request's server transaction is made now, so that its
    /// retransmissions are absorbed while the script works on it.
    pub const T_NEWTRAN: FuncId = FuncId(31);
    /// `append_branch([uri])` (OpenSIPS core): one more branch for `t_relay()`, to `uri` or to
    /// the current `$ru` / `$du`.
    pub const APPEND_BRANCH: FuncId = FuncId(32);
    /// `serialize_branches(clear)` (OpenSIPS core): serial forking by q; the first group stays.
    pub const SERIALIZE_BRANCHES: FuncId = FuncId(33);
    /// `next_branches()` (OpenSIPS core): the next q group, in a failure route.
    pub const NEXT_BRANCHES: FuncId = FuncId(34);
    /// `add_path()` (OpenSIPS path): a REGISTER relayed from here carries our Path (RFC 3327).
    pub const ADD_PATH: FuncId = FuncId(35);
    /// `add_path_received()` (OpenSIPS path): the same, with the client's source address.
    pub const ADD_PATH_RECEIVED: FuncId = FuncId(36);
    /// `force_rport()` (OpenSIPS core, RFC 3581 §4): the top Via gets `rport` as if the client
    /// had asked, so replies go to the source port.
    pub const FORCE_RPORT: FuncId = FuncId(37);
    /// `fix_nated_contact([uri_params])` (OpenSIPS nathelper): the Contact's host:port become
    /// the request's (or reply's) source address.
    pub const FIX_NATED_CONTACT: FuncId = FuncId(38);
    /// `nat_uac_test(flags)` (OpenSIPS nathelper): 1 when one of the selected tests finds the
    /// sender behind a NAT.
    pub const NAT_UAC_TEST: FuncId = FuncId(39);
}

/// What an argument position accepts, and what the host receives there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A string literal or bare word; passed as `Value::Str`.
    Str,
    /// An integer literal, a string literal holding one (`"404"`), or a pseudo-variable
    /// whose value is converted at run time; passed as `Value::Int` (`Value::Null` when the
    /// variable holds no integer).
    Int,
    /// A string with pseudo-variables (`"$rm from $si"`), split at compile time and rendered
    /// at run time; also a lone pseudo-variable or an integer. Passed as `Value::Str`.
    Format,
    /// A pseudo-variable; its current value is passed.
    Pv,
    /// An integer or string literal, bare word or pseudo-variable; passed as it is.
    IntOrStr,
    /// A writable pseudo-variable (`$var(name)`) the function stores a result in (OpenSIPS's
    /// output `pvar` parameters). Passed as `Value::Null`; after the call the engine stores
    /// what [`super::Env::take_output`] gives for this position.
    OutPv,
}

impl ArgKind {
    /// How this kind is described in error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            ArgKind::Str => "a string",
            ArgKind::Int => "an integer or a pseudo-variable",
            ArgKind::Format => "a string or a pseudo-variable",
            ArgKind::Pv => "a pseudo-variable",
            ArgKind::IntOrStr => "an integer, a string or a pseudo-variable",
            ArgKind::OutPv => "a writable pseudo-variable, e.g. $var(name)",
        }
    }
}

/// One registered function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncSpec {
    /// Its script name.
    pub name: Box<str>,
    /// Accepted arguments by position; the maximum count is their number.
    pub args: Box<[ArgKind]>,
    /// The minimum count of arguments.
    pub min_args: usize,
}

/// Why a function could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is already registered.
    #[error("function '{0}' is already registered")]
    Duplicate(String),
    /// The name is not an identifier or is a keyword of the language.
    #[error("'{0}' cannot be a function name")]
    BadName(String),
    /// `min_args` exceeds the number of argument specs.
    #[error("function '{name}': min_args {min} exceeds the {max} declared arguments")]
    BadMinArgs {
        /// The function.
        name: String,
        /// The given minimum.
        min: usize,
        /// The number of argument specs.
        max: usize,
    },
    /// More functions than a [`FuncId`] can number.
    #[error("too many functions")]
    Full,
}

/// Words the parser treats specially; they cannot name functions.
const RESERVED: &[&str] = &[
    "if", "else", "exit", "drop", "return", "route", "myself", "NULL", "null", "switch", "while",
    "for", "foreach", "break", "case", "default",
];

/// Name → function registry. Built with [`FunctionTable::with_core`], extended by the host.
#[derive(Debug, Clone)]
pub struct FunctionTable {
    funcs: Vec<FuncSpec>,
    by_name: HashMap<Box<str>, FuncId>,
}

impl Default for FunctionTable {
    fn default() -> Self {
        Self::with_core()
    }
}

impl FunctionTable {
    /// A table holding the core functions, with the ids of the `FuncId` constants:
    /// `xlog([level,] format)`, `sl_send_reply(code, reason)`, `is_method(list)`,
    /// `forward([uri])`, `t_relay()`, `save(table)`, `lookup(table)`, `record_route()`,
    /// `loose_route()`, `has_totag()`, `mf_process_maxfwd_header(limit)`, `append_hf(text)`,
    /// `remove_hf(name)`, `is_present_hf(name)`, `sanity_check()`, `sipmsg_validate()`,
    /// `www_challenge(realm[, qop[, algorithms]])`, `proxy_challenge(...)`,
    /// `www_authorize(realm[, table])`, `proxy_authorize(...)`, `consume_credentials()`,
    /// `check_from()`, `check_to()`, `pike_check_req()`,
    /// `jwt_script_authorize(token, key[, out_decoded[, out_user]])`, `t_check_trans()`, `t_reply(code, reason)`,
    /// `t_on_failure(route)`, `t_on_reply(route)`, `t_on_branch(route)`, `t_check_status(re)`,
    /// `t_newtran()`, `append_branch([uri])`, `serialize_branches([clear])`, `next_branches()`,
    /// `add_path([user])`, `add_path_received([user])`,
    /// `force_rport()`, `fix_nated_contact([uri_params])`, `nat_uac_test(flags)`.
    pub fn with_core() -> Self {
        let mut t = FunctionTable {
            funcs: Vec::new(),
            by_name: HashMap::new(),
        };
        let core: [(&str, &[ArgKind], usize); 40] = [
            ("xlog", &[ArgKind::Format, ArgKind::Format], 1),
            ("sl_send_reply", &[ArgKind::Int, ArgKind::Format], 2),
            ("is_method", &[ArgKind::Str], 1),
            ("forward", &[ArgKind::Format], 0),
            ("t_relay", &[], 0),
            ("save", &[ArgKind::Str, ArgKind::Str], 1),
            ("lookup", &[ArgKind::Str], 1),
            ("record_route", &[], 0),
            ("loose_route", &[], 0),
            ("has_totag", &[], 0),
            ("mf_process_maxfwd_header", &[ArgKind::Int], 1),
            ("append_hf", &[ArgKind::Format], 1),
            ("remove_hf", &[ArgKind::Str], 1),
            ("is_present_hf", &[ArgKind::Str], 1),
            ("sanity_check", &[ArgKind::IntOrStr, ArgKind::IntOrStr], 0),
            (
                "sipmsg_validate",
                &[ArgKind::IntOrStr, ArgKind::IntOrStr],
                0,
            ),
            (
                "www_challenge",
                &[ArgKind::Format, ArgKind::Str, ArgKind::Str],
                1,
            ),
            (
                "proxy_challenge",
                &[ArgKind::Format, ArgKind::Str, ArgKind::Str],
                1,
            ),
            ("www_authorize", &[ArgKind::Format, ArgKind::Str], 1),
            ("proxy_authorize", &[ArgKind::Format, ArgKind::Str], 1),
            ("consume_credentials", &[], 0),
            ("check_from", &[], 0),
            ("check_to", &[], 0),
            ("pike_check_req", &[], 0),
            (
                "jwt_script_authorize",
                &[
                    ArgKind::Format,
                    ArgKind::Format,
                    ArgKind::OutPv,
                    ArgKind::OutPv,
                ],
                2,
            ),
            ("t_check_trans", &[], 0),
            ("t_reply", &[ArgKind::Int, ArgKind::Format], 2),
            ("t_on_failure", &[ArgKind::Str], 1),
            ("t_on_reply", &[ArgKind::Str], 1),
            ("t_on_branch", &[ArgKind::Str], 1),
            ("t_check_status", &[ArgKind::Str], 1),
            ("t_newtran", &[], 0),
            ("append_branch", &[ArgKind::Format], 0),
            ("serialize_branches", &[ArgKind::Int], 0),
            ("next_branches", &[], 0),
            ("add_path", &[ArgKind::Str], 0),
            ("add_path_received", &[ArgKind::Str], 0),
            ("force_rport", &[], 0),
            ("fix_nated_contact", &[ArgKind::Format], 0),
            ("nat_uac_test", &[ArgKind::Int], 1),
        ];
        for (name, args, min) in core {
            // Fresh table, valid names: registration cannot fail.
            let _ = t.register(name, args, min);
        }
        t
    }

    /// Register `name` taking `min_args..=args.len()` arguments of the given kinds.
    pub fn register(
        &mut self,
        name: &str,
        args: &[ArgKind],
        min_args: usize,
    ) -> Result<FuncId, RegisterError> {
        let ident = name
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
        if name.is_empty() || !ident || RESERVED.contains(&name) {
            return Err(RegisterError::BadName(name.to_owned()));
        }
        if self.by_name.contains_key(name) {
            return Err(RegisterError::Duplicate(name.to_owned()));
        }
        if min_args > args.len() {
            return Err(RegisterError::BadMinArgs {
                name: name.to_owned(),
                min: min_args,
                max: args.len(),
            });
        }
        let id = FuncId(u16::try_from(self.funcs.len()).map_err(|_| RegisterError::Full)?);
        self.funcs.push(FuncSpec {
            name: name.into(),
            args: args.into(),
            min_args,
        });
        self.by_name.insert(name.into(), id);
        Ok(id)
    }

    /// The id of a registered name.
    pub fn lookup(&self, name: &str) -> Option<FuncId> {
        self.by_name.get(name).copied()
    }

    /// The spec of an id.
    pub fn spec(&self, id: FuncId) -> Option<&FuncSpec> {
        self.funcs.get(id.0 as usize)
    }

    /// The name of an id.
    pub fn name(&self, id: FuncId) -> Option<&str> {
        self.spec(id).map(|s| &*s.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `FuncId` constants are the ids `with_core` registers their names under.
    #[test]
    fn core_ids_match_registration_order() {
        let t = FunctionTable::with_core();
        for (name, id) in [
            ("xlog", FuncId::XLOG),
            ("sl_send_reply", FuncId::SL_SEND_REPLY),
            ("is_method", FuncId::IS_METHOD),
            ("forward", FuncId::FORWARD),
            ("t_relay", FuncId::T_RELAY),
            ("save", FuncId::SAVE),
            ("lookup", FuncId::LOOKUP),
            ("record_route", FuncId::RECORD_ROUTE),
            ("loose_route", FuncId::LOOSE_ROUTE),
            ("has_totag", FuncId::HAS_TOTAG),
            ("mf_process_maxfwd_header", FuncId::MF_PROCESS_MAXFWD),
            ("append_hf", FuncId::APPEND_HF),
            ("remove_hf", FuncId::REMOVE_HF),
            ("is_present_hf", FuncId::IS_PRESENT_HF),
            ("sanity_check", FuncId::SANITY_CHECK),
            ("sipmsg_validate", FuncId::SIPMSG_VALIDATE),
            ("pike_check_req", FuncId::PIKE_CHECK_REQ),
            ("jwt_script_authorize", FuncId::JWT_SCRIPT_AUTHORIZE),
            ("t_check_trans", FuncId::T_CHECK_TRANS),
            ("t_reply", FuncId::T_REPLY),
            ("t_on_failure", FuncId::T_ON_FAILURE),
            ("t_on_reply", FuncId::T_ON_REPLY),
            ("t_on_branch", FuncId::T_ON_BRANCH),
            ("t_check_status", FuncId::T_CHECK_STATUS),
            ("t_newtran", FuncId::T_NEWTRAN),
            ("append_branch", FuncId::APPEND_BRANCH),
            ("serialize_branches", FuncId::SERIALIZE_BRANCHES),
            ("next_branches", FuncId::NEXT_BRANCHES),
            ("add_path", FuncId::ADD_PATH),
            ("add_path_received", FuncId::ADD_PATH_RECEIVED),
            ("force_rport", FuncId::FORCE_RPORT),
            ("fix_nated_contact", FuncId::FIX_NATED_CONTACT),
            ("nat_uac_test", FuncId::NAT_UAC_TEST),
        ] {
            assert_eq!(t.lookup(name), Some(id), "{name}");
        }
    }
}
