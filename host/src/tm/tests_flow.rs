//! The pieces together as the driver will use them: keys find transactions in the sharded
//! table (retransmissions, the ACK of a non-2xx, a CANCEL naming its INVITE, responses by
//! client key), and a timer queue kept from the actions fires what the machines armed.

use std::time::Instant;

use super::tests_util::{ack, inv_resp, invite, ms, out, request, show};
use super::{
    Action, Actions, ClientInvite, ClientKey, Event, ServerInvite, ServerKey, State, Table, Timer,
    TimerQueue, TimerValues, Transaction,
};

/// What a driver does with the timer actions of `key`'s transaction.
fn drive<K: Clone + Eq + std::hash::Hash + Ord>(
    q: &mut TimerQueue<K, Timer>,
    key: &K,
    acts: &Actions,
) {
    for a in acts {
        match a {
            Action::Arm(t, at) => q.arm(key.clone(), *t, *at),
            Action::Disarm(t) => {
                q.disarm(key, *t);
            }
            Action::Terminated => q.disarm_all(key),
            _ => {}
        }
    }
}

#[test]
fn server_side_flow() {
    let t0 = Instant::now();
    let table: Table<ServerKey, Transaction> = Table::new(16, 1024);
    let mut q = TimerQueue::new();
    let key = ServerKey::of(&invite()).unwrap();
    let (txn, acts) = ServerInvite::new(invite(), false, TimerValues::default()).unwrap();
    assert_eq!(show(&acts, t0), ["send 100"]);
    table
        .insert(key.clone(), Transaction::ServerInvite(txn))
        .unwrap();
    // A retransmission has the same key and gets the 100 again.
    let again = ServerKey::of(&invite()).unwrap();
    let acts = table
        .with(&again, |t| {
            t.on_event(Event::received(invite()), t0 + ms(500))
        })
        .unwrap();
    assert_eq!(show(&acts, t0), ["send 100"]);
    // The CANCEL is not this transaction, but names it (§9.2).
    let cancel = request("CANCEL", "z9hG4bK776asdhds");
    assert!(!table.contains(&ServerKey::of(&cancel).unwrap()));
    assert!(table.contains(&ServerKey::of_cancelled(&cancel).unwrap()));
    // The TU answers 487; G and H go into the driver's queue.
    let acts = table
        .with(&key, |t| {
            t.on_event(Event::Respond(out(inv_resp(487))), t0 + ms(600))
        })
        .unwrap();
    drive(&mut q, &key, &acts);
    assert_eq!(q.next_deadline(), Some(t0 + ms(1_100)));
    for (k, timer) in q.expire(t0 + ms(1_100)) {
        let acts = table
            .with(&k, |t| t.on_event(Event::Timer(timer), t0 + ms(1_100)))
            .unwrap();
        assert_eq!(show(&acts, t0), ["send 487", "arm G 2100"]);
        drive(&mut q, &k, &acts);
    }
    // The ACK for the 487 carries the INVITE's branch: same key, confirms.
    let ack_key = ServerKey::of(&ack("a6c85cf")).unwrap();
    assert_eq!(ack_key, key);
    let acts = table
        .with(&ack_key, |t| {
            t.on_event(Event::received(ack("a6c85cf")), t0 + ms(1_200))
        })
        .unwrap();
    drive(&mut q, &key, &acts);
    assert_eq!(q.len(), 1);
    assert_eq!(q.next_deadline(), Some(t0 + ms(6_200)));
    for (k, timer) in q.expire(t0 + ms(6_200)) {
        let acts = table
            .with(&k, |t| t.on_event(Event::Timer(timer), t0 + ms(6_200)))
            .unwrap();
        assert_eq!(show(&acts, t0), ["end"]);
        let gone = table.remove(&k).unwrap();
        assert_eq!(gone.state(), State::Terminated);
    }
    assert!(table.is_empty() && q.is_empty());
}

#[test]
fn client_side_responses_find_their_transaction() {
    let t0 = Instant::now();
    let table: Table<ClientKey, Transaction> = Table::new(4, 64);
    let req = invite();
    let key = ClientKey::of(&req).unwrap();
    let (txn, _) = ClientInvite::new(req, false, TimerValues::default(), t0).unwrap();
    table
        .insert(key.clone(), Transaction::ClientInvite(txn))
        .unwrap();
    let resp = inv_resp(180);
    let acts = table
        .with(&ClientKey::of(&resp).unwrap(), |t| {
            t.on_event(Event::received(resp.clone()), t0 + ms(100))
        })
        .unwrap();
    assert_eq!(show(&acts, t0), ["disarm A", "disarm B", "up 180"]);
    // The 200 to a CANCEL with the same branch is not the INVITE's.
    let cancel_ok = super::tests_util::response(200, "CANCEL", "z9hG4bK776asdhds");
    assert!(!table.contains(&ClientKey::of(&cancel_ok).unwrap()));
}
