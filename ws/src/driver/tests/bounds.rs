//! Everything we queue counts against `max_write_queue`: a client that floods Pings and reads
//! slowly or not at all is closed once its Pongs fill the queue, whatever the send timeout.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::*;

/// Sends 125-byte Pings on `s` (up to `total` bytes) until the server closes it; every
/// `read_every` Pings, reads up to `read` bytes (0: never reads). Returns the bytes sent.
fn ping_flood(mut s: TcpStream, total: usize, read_every: usize, read: usize) -> usize {
    let ping = frame(0x89, &[b'p'; 125]);
    let mut burst = Vec::new();
    for _ in 0..64 {
        burst.extend_from_slice(&ping);
    }
    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut sent = 0;
    let mut buf = vec![0u8; read.max(1)];
    let mut n = 0usize;
    while sent < total {
        if s.write_all(&burst).is_err() {
            break;
        }
        sent += burst.len();
        n += 64;
        if read > 0 && n >= read_every {
            n = 0;
            if matches!(s.read(&mut buf), Ok(0)) {
                break;
            }
        }
    }
    sent
}

fn flood_is_closed_alone(read_every: usize, read: usize) {
    let srv = Server::start(
        WsConfig {
            max_write_queue: 64 * 1024,
            // Only the queue bound can stop the flood.
            send_timeout: Duration::from_secs(30),
            ..cfg()
        },
        Echo::Send,
    );
    let mut other = ws(srv.addr);
    let flooder = slow_ws(srv.addr);
    let peer = flooder.local_addr().unwrap().to_string();
    let t0 = Instant::now();
    let th = std::thread::spawn(move || ping_flood(flooder, 64 << 20, read_every, read));
    let (m, reason) = srv.next_closed(20);
    assert_eq!(m.peer.to_string(), peer);
    assert_eq!(reason, "write queue overflow");
    let sent = th.join().unwrap();
    println!(
        "closed after {:?}, {sent} bytes of pings sent",
        t0.elapsed()
    );
    assert!(sent < 64 << 20, "the flood was never stopped");
    let logs = srv.logs();
    let lines: Vec<_> = logs
        .iter()
        .filter(|l| l.starts_with("3 ") && l.contains(&format!("peer={peer}")))
        .collect();
    assert_eq!(lines.len(), 1, "{logs:?}");
    // The other client lost nothing.
    other.write_all(&frame(0x81, b"still here")).unwrap();
    assert_eq!(read_frame(&mut other), Some((0x81, b"still here".to_vec())));
    assert_eq!(srv.rt.connections().len(), 1);
}

#[test]
fn ping_flood_without_reading_is_closed_at_the_queue_bound() {
    flood_is_closed_alone(0, 0);
}

#[test]
fn ping_flood_reading_slowly_is_closed_at_the_queue_bound() {
    // Reads a few bytes now and then: write progress keeps the send timeout from firing.
    flood_is_closed_alone(256, 64);
}

#[test]
fn control_frames_share_chunks_behind_a_backlog() {
    use crate::driver::wqueue::{WriteQueue, SMALL_CHUNK};
    use crate::proto::frame::OpCode;
    let mut q = WriteQueue::default();
    q.push_frame(OpCode::Pong, &[1; 125], None);
    // Alone, a Pong costs its bytes.
    assert_eq!((q.bytes(), q.cost()), (127, 127));
    for _ in 0..100 {
        q.push_frame(OpCode::Pong, &[1; 125], None);
    }
    assert_eq!(q.bytes(), 101 * 127);
    // Behind a backlog, Pongs fill shared chunks: the cost stays close to the bytes.
    assert!(q.cost() < q.bytes() + 2 * SMALL_CHUNK, "{}", q.cost());
    let mut out = Vec::new();
    q.write_to(&mut out).unwrap();
    assert_eq!(out.len(), 101 * 127);
    assert_eq!((q.bytes(), q.cost()), (0, 0));
    assert!(out.chunks(127).all(|f| f[..2] == [0x8A, 125]));
}
