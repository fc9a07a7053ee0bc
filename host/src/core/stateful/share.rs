//! Each source's share of the transaction table (`max_transactions_per_source`): a client
//! that sends requests to a callee that never answers cannot take the table, and the
//! memory, from the others.
use crate::tm::{Table, TableError};
use sipcore_abi::ReceiveInfo;

/// Whom a transaction is counted against: the connection, or the IP address (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Source {
    Conn(u8, u64),
    Ip(u8, std::net::IpAddr),
}

impl Source {
    pub(super) fn of(info: &ReceiveInfo) -> Source {
        match info.src.to_std() {
            Some(a) if !crate::core::addr::connection_oriented(info.proto) => {
                Source::Ip(info.proto.0, a.ip().to_canonical())
            }
            _ => Source::Conn(info.proto.0, info.conn_id),
        }
    }
}

/// Counts one more transaction for `src`; false (nothing counted) at the limit.
pub(super) fn take_share(t: &Table<Source, u32>, max: u32, src: Source) -> bool {
    loop {
        match t.with(&src, |n| {
            if *n >= max {
                false
            } else {
                *n += 1;
                true
            }
        }) {
            Some(ok) => return ok,
            None => match t.insert(src, 1) {
                Ok(()) => return true,
                Err(TableError::Exists) => continue,
                Err(TableError::Full) => return false,
            },
        }
    }
}

pub(super) fn give_back(t: &Table<Source, u32>, src: Source) {
    let left = t.with(&src, |n| {
        *n = n.saturating_sub(1);
        *n
    });
    if left == Some(0) {
        // A racing take_share between the two locks counts again from 1 on a new entry.
        t.remove(&src);
    }
}
