//! Queue tests: bound, order, sweeping, credits, wake-up.

use super::*;
use std::sync::mpsc;
use std::time::Instant;

fn push_bytes(q: &Queue, p: &[u8]) -> Push {
    q.push(|out| {
        out.extend_from_slice(p);
        true
    })
}

fn packets(b: &Batch) -> Vec<Vec<u8>> {
    (0..b.len())
        .map(|i| b.packet(i).unwrap().to_vec())
        .collect()
}

#[test]
fn bounded_in_order_and_credits_come_back() {
    let q = Queue::new(100);
    for i in 0..100u8 {
        assert_eq!(push_bytes(&q, &[i; 3]), Push::Queued);
    }
    assert_eq!(push_bytes(&q, b"x"), Push::Full);
    assert_eq!(q.free_credits(), 0);
    let (mut spares, mut out) = (Vec::new(), Vec::new());
    assert_eq!(q.sweep(&mut spares, &mut out), 100);
    assert_eq!(out.len(), 1);
    let want: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 3]).collect();
    assert_eq!(packets(&out[0]), want);
    assert_eq!(out[0].data().len(), 300);
    assert_eq!(out[0].end(1), Some(6));
    // The sweep gave the credits back: the sender holds the batch now.
    assert_eq!(q.free_credits(), 100);
    for b in out.drain(..) {
        q.release(b, &mut spares);
    }
    assert_eq!(push_bytes(&q, b"y"), Push::Queued);
    assert_eq!(q.sweep(&mut spares, &mut out), 1);
    assert_eq!(packets(&out[0]), vec![b"y".to_vec()]);
    // The spare batch went back into the slot.
    assert!(spares.is_empty());
}

#[test]
fn capacity_below_credit_step_is_exact() {
    let q = Queue::new(5);
    let accepted = (0..50)
        .filter(|_| push_bytes(&q, b"p") == Push::Queued)
        .count();
    assert_eq!(accepted, 5);
    let q = Queue::new(0); // raised to 1
    assert_eq!(push_bytes(&q, b"p"), Push::Queued);
    assert_eq!(push_bytes(&q, b"p"), Push::Full);
}

#[test]
fn failed_or_empty_encoding_queues_nothing() {
    let q = Queue::new(10);
    assert_eq!(push_bytes(&q, b"a"), Push::Queued);
    let failed = q.push(|out| {
        out.extend_from_slice(b"garbage");
        false
    });
    assert_eq!(failed, Push::Rejected);
    assert_eq!(q.push(|_| true), Push::Rejected);
    assert_eq!(push_bytes(&q, b"b"), Push::Queued);
    let (mut spares, mut out) = (Vec::new(), Vec::new());
    assert_eq!(q.sweep(&mut spares, &mut out), 2);
    assert_eq!(packets(&out[0]), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(out[0].data(), b"ab");
}

#[test]
fn bytes_left_by_a_panicking_encoder_are_discarded() {
    let q = Arc::new(Queue::new(10));
    let q2 = Arc::clone(&q);
    let r = std::panic::catch_unwind(move || {
        assert_eq!(push_bytes(&q2, b"a"), Push::Queued);
        q2.push(|out| {
            out.extend_from_slice(b"half");
            panic!("encoder bug");
        });
    });
    assert!(r.is_err());
    // Same thread, same slot: the next push starts after "a".
    assert_eq!(push_bytes(&q, b"b"), Push::Queued);
    let (mut spares, mut out) = (Vec::new(), Vec::new());
    q.sweep(&mut spares, &mut out);
    assert_eq!(out[0].data(), b"ab");
}

#[test]
fn each_thread_has_its_own_batch() {
    let q = Arc::new(Queue::new(1000));
    let handles: Vec<_> = (0..3u8)
        .map(|t| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    assert_eq!(push_bytes(&q, &[t, i]), Push::Queued);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let (mut spares, mut out) = (Vec::new(), Vec::new());
    assert_eq!(q.sweep(&mut spares, &mut out), 150);
    assert_eq!(out.len(), 3);
    let mut firsts: Vec<u8> = out.iter().map(|b| b.packet(0).unwrap()[0]).collect();
    firsts.sort_unstable();
    assert_eq!(firsts, vec![0, 1, 2]);
    for b in &out {
        let t = b.packet(0).unwrap()[0];
        let want: Vec<Vec<u8>> = (0..50u8).map(|i| vec![t, i]).collect();
        assert_eq!(packets(b), want);
    }
    assert_eq!(q.free_credits(), 1000);
    for b in out.drain(..) {
        q.release(b, &mut spares);
    }
    // The exited threads' slots are forgotten once swept empty.
    q.sweep(&mut spares, &mut out);
    assert!(out.is_empty());
    assert_eq!(lock(&q.slots).len(), 0);
}

#[test]
fn first_packet_wakes_a_parked_sender() {
    let q = Arc::new(Queue::new(10));
    let (tx, rx) = mpsc::channel();
    let q2 = Arc::clone(&q);
    let sender = std::thread::spawn(move || {
        q2.attach();
        let start = Instant::now();
        let (mut spares, mut out) = (Vec::new(), Vec::new());
        while q2.sweep(&mut spares, &mut out) == 0 {
            tx.send(()).unwrap();
            q2.park(Duration::from_secs(30), || false);
        }
        start.elapsed()
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(push_bytes(&q, b"wake"), Push::Queued);
    let waited = sender.join().unwrap();
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn park_returns_at_once_when_packets_are_staged_or_stopping() {
    let q = Queue::new(10);
    q.attach();
    assert_eq!(push_bytes(&q, b"p"), Push::Queued);
    let start = Instant::now();
    q.park(Duration::from_secs(30), || false);
    let q = Queue::new(10);
    q.attach();
    q.park(Duration::from_secs(30), || true);
    assert!(start.elapsed() < Duration::from_secs(5));
}
