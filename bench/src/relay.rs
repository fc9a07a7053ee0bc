//! `relay` mode: P pairs of users. B registers (a browser-style `.invalid` contact, so only its
//! WebSocket can reach it) and answers every MESSAGE with 200; A keeps W MESSAGEs to B in
//! flight through the server. Reports relayed transactions/s (MESSAGE out, 200 back at A),
//! latency quantiles and the server's CPU seconds. With `--callee-udp`, B registers and answers
//! over UDP instead: each MESSAGE goes in over WebSocket and out over UDP (issue 14's
//! "WebSocket -> UDP relayed transactions").

use crate::hist::Hist;
use crate::measure::{self, Shared, Window};
use crate::rr::parse_response;
use crate::ua::next_text;
use crate::ws::{self, Masker, Opcode};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Parameters of a relay run.
pub struct RelayArgs {
    /// Server addresses, comma-separated (see `Mode::Relay`).
    pub addr: String,
    /// Seconds between the registrations and the first MESSAGE.
    pub settle: f64,
    /// A on node (i + 1) mod N: every MESSAGE crosses nodes.
    pub all_cross: bool,
    /// B registers and answers over UDP, to this server address (host:port), from a socket
    /// of its own.
    pub callee_udp: Option<String>,
    /// SIP domain of the users.
    pub domain: String,
    /// Pairs of users.
    pub pairs: usize,
    /// MESSAGEs in flight per pair.
    pub window: usize,
    /// The measurement window.
    pub window_args: Window,
}

fn io_err(s: &str) -> std::io::Error {
    std::io::Error::other(s.to_string())
}

/// B's REGISTER of `bob<id>@domain` with one Via (`SIP/2.0/` + `via`) and `contact`,
/// for an hour.
fn register(domain: &str, id: usize, via: &str, contact: &str) -> String {
    format!(
        "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/{via}\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob{id}@{domain}>\r\nFrom: <sip:bob{id}@{domain}>;tag=r{id}\r\n\
         Call-ID: reg-{id}@sipbench\r\nCSeq: 1 REGISTER\r\n\
         Contact: <{contact}>;expires=3600\r\nContent-Length: 0\r\n\r\n"
    )
}

/// B: register, then answer every MESSAGE with 200 until the connection closes.
async fn callee(
    addr: Arc<str>,
    domain: Arc<str>,
    id: usize,
    ready: oneshot::Sender<()>,
) -> std::io::Result<()> {
    let mut s = TcpStream::connect(&*addr).await?;
    s.set_nodelay(true)?;
    let mut buf = ws::handshake(&mut s, &addr, "/").await?;
    let mut m = Masker::new();
    let mut out = Vec::with_capacity(4096);
    let reg = register(
        &domain,
        id,
        &format!("WS b{id}.invalid;branch=z9hG4bK-reg-{id}"),
        &format!("sip:b{id}@b{id}.invalid;transport=ws"),
    );
    m.push_frame(&mut out, 1, reg.as_bytes());
    s.write_all(&out).await?;
    out.clear();
    let r = next_text(&mut s, &mut buf, &mut m).await?;
    if parse_response(&r).map(|x| x.0) != Some(200) {
        return Err(io_err(&format!(
            "REGISTER not accepted: {}",
            String::from_utf8_lossy(r.split(|b| *b == b'\r').next().unwrap_or(&[]))
        )));
    }
    let _ = ready.send(());
    let mut tmp = vec![0u8; 65536];
    let mut reply = Vec::with_capacity(1024);
    loop {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut pos = 0;
        while let Some(f) = ws::parse_frame(&buf[pos..]) {
            let payload = &buf[pos + f.start..pos + f.end];
            match f.opcode {
                Opcode::Text | Opcode::Binary if payload.starts_with(b"MESSAGE ") => {
                    answer_200(payload, &mut reply);
                    m.push_frame(&mut out, 1, &reply);
                }
                Opcode::Ping => {
                    let p = payload.to_vec();
                    m.push_frame(&mut out, 0xA, &p);
                }
                Opcode::Close => return Ok(()),
                _ => {}
            }
            pos += f.end;
        }
        buf.drain(..pos);
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
    }
}

/// B over UDP: register from a socket of its own (its address as the Contact), then answer
/// every MESSAGE with 200 to where it came from (RFC 3261 §18.2.2 with `rport`: the proxy's
/// socket). REGISTER is sent again every 500 ms until answered (§17.1.2.2's Timer E, roughly).
async fn callee_udp(
    server: Arc<str>,
    domain: Arc<str>,
    id: usize,
    ready: oneshot::Sender<()>,
) -> std::io::Result<()> {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let me = s.local_addr()?;
    let reg = register(
        &domain,
        id,
        &format!("UDP {me};rport;branch=z9hG4bK-ureg-{id}"),
        &format!("sip:bob{id}@{me}"),
    );
    let mut tmp = vec![0u8; 65536];
    let mut registered = false;
    for _ in 0..10 {
        s.send_to(reg.as_bytes(), &*server).await?;
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(500), s.recv_from(&mut tmp)).await
        {
            let (n, _) = r?;
            match parse_response(&tmp[..n]) {
                Some((200, 1)) => {
                    registered = true;
                    break;
                }
                Some((code, 1)) if code >= 200 => {
                    return Err(io_err(&format!("REGISTER over UDP answered {code}")));
                }
                _ => {}
            }
        }
    }
    if !registered {
        return Err(io_err("REGISTER over UDP not answered"));
    }
    let _ = ready.send(());
    let mut reply = Vec::with_capacity(1024);
    loop {
        let (n, from) = s.recv_from(&mut tmp).await?;
        if tmp[..n].starts_with(b"MESSAGE ") {
            answer_200(&tmp[..n], &mut reply);
            s.send_to(&reply, from).await?;
        }
    }
}

/// A UAS's 200 to `req` (RFC 3261 §8.2.6): Vias, From, Call-ID, CSeq copied, To tagged.
fn answer_200(req: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    for line in req.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let lower: Vec<u8> = line.iter().take(8).map(u8::to_ascii_lowercase).collect();
        let keep = lower.starts_with(b"via:")
            || lower.starts_with(b"v:")
            || lower.starts_with(b"from:")
            || lower.starts_with(b"f:")
            || lower.starts_with(b"call-id:")
            || lower.starts_with(b"i:")
            || lower.starts_with(b"cseq:");
        if keep {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        } else if lower.starts_with(b"to:") || lower.starts_with(b"t:") {
            out.extend_from_slice(line);
            out.extend_from_slice(b";tag=uas\r\n");
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

fn write_message(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    m: &mut Masker,
    domain: &str,
    id: usize,
    cseq: u64,
) {
    scratch.clear();
    let _ = write!(
        scratch,
        "MESSAGE sip:bob{id}@{domain} SIP/2.0\r\n\
         Via: SIP/2.0/WS a{id}.invalid;rport;branch=z9hG4bK-m{id}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:bob{id}@{domain}>\r\n\
         From: <sip:alice{id}@{domain}>;tag=a{id}\r\n\
         Call-ID: relay-{id}@sipbench\r\n\
         CSeq: {cseq} MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 5\r\n\r\nhello"
    );
    m.push_frame(out, 1, scratch);
}

/// A: keep W MESSAGEs to B in flight; measure the 200s.
async fn caller(
    addr: Arc<str>,
    domain: Arc<str>,
    id: usize,
    w: usize,
    sh: Arc<Shared>,
) -> std::io::Result<Hist> {
    let mut s = TcpStream::connect(&*addr).await?;
    s.set_nodelay(true)?;
    let mut buf = ws::handshake(&mut s, &addr, "/").await?;
    let mut m = Masker::new();
    let mut out = Vec::with_capacity(512 * w);
    let mut scratch = Vec::with_capacity(512);
    let mut sent_at = vec![Instant::now(); w];
    let mut hist = Hist::new();
    for slot in 0..w {
        write_message(&mut out, &mut scratch, &mut m, &domain, id, slot as u64 + 1);
    }
    let now = Instant::now();
    sent_at.iter_mut().for_each(|t| *t = now);
    s.write_all(&out).await?;
    out.clear();
    let mut outstanding = w;
    let mut tmp = vec![0u8; 65536];
    loop {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(io_err("server closed the connection"));
        }
        buf.extend_from_slice(&tmp[..n]);
        let now = Instant::now();
        let stop = sh.stop.load(Ordering::Relaxed);
        let measuring = sh.measuring.load(Ordering::Relaxed);
        let mut pos = 0;
        while let Some(f) = ws::parse_frame(&buf[pos..]) {
            let payload = &buf[pos + f.start..pos + f.end];
            match (f.opcode, parse_response(payload)) {
                (Opcode::Text | Opcode::Binary, Some((code, cseq))) if cseq >= 1 => {
                    if code < 200 {
                        pos += f.end;
                        continue;
                    }
                    let slot = ((cseq - 1) % w as u64) as usize;
                    if code != 200 {
                        sh.non200.fetch_add(1, Ordering::Relaxed);
                    }
                    if measuring && !stop {
                        hist.record(now.duration_since(sent_at[slot]).as_nanos() as u64);
                    }
                    outstanding -= 1;
                    if !stop {
                        write_message(&mut out, &mut scratch, &mut m, &domain, id, cseq + w as u64);
                        sent_at[slot] = now;
                        outstanding += 1;
                    }
                }
                (Opcode::Ping, _) => {
                    let p = payload.to_vec();
                    m.push_frame(&mut out, 0xA, &p);
                }
                (Opcode::Close, _) => return Err(io_err("server sent close")),
                _ => {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            pos += f.end;
        }
        buf.drain(..pos);
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        if stop && outstanding == 0 {
            return Ok(hist);
        }
    }
}

/// Run the scenario; prints one `RESULT` line.
pub async fn run(a: RelayArgs) -> Result<(), String> {
    let sh = Arc::new(Shared::default());
    let addrs: Vec<Arc<str>> = a.addr.split(',').map(|x| x.trim().into()).collect();
    let n = addrs.len();
    let domain: Arc<str> = a.domain.clone().into();
    let mut callees = Vec::new();
    let mut callers = Vec::new();
    for id in 0..a.pairs {
        let (tx, rx) = oneshot::channel();
        callees.push(match &a.callee_udp {
            Some(u) => tokio::spawn(callee_udp(u.as_str().into(), domain.clone(), id, tx)),
            None => tokio::spawn(callee(addrs[id % n].clone(), domain.clone(), id, tx)),
        });
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(())) => {}
            _ => {
                let why = match callees.pop() {
                    Some(t) => match tokio::time::timeout(Duration::from_secs(1), t).await {
                        Ok(Ok(Err(e))) => e.to_string(),
                        _ => "no answer".into(),
                    },
                    None => "no answer".into(),
                };
                return Err(format!("bob{id} could not register: {why}"));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    for id in 0..a.pairs {
        callers.push(tokio::spawn(caller(
            addrs[if a.all_cross {
                (id + 1) % n
            } else {
                (id / n) % n
            }]
            .clone(),
            domain.clone(),
            id,
            a.window,
            sh.clone(),
        )));
    }
    let m = measure::window(&a.window_args, &sh).await;
    let c = measure::collect(callers, Duration::from_secs(10)).await;
    for t in callees {
        t.abort();
    }
    let n = c.hist.count();
    println!(
        "RESULT mode=relay{} pairs={} window={} secs={:.2} transactions={} tps={:.0} {}",
        if a.callee_udp.is_some() {
            "_ws_udp"
        } else {
            ""
        },
        a.pairs,
        a.window,
        m.elapsed,
        n,
        n as f64 / m.elapsed,
        measure::result_tail(n, &c, &m, &sh, "tx_per_cpu_s")
    );
    if let Some(e) = c.first_err {
        eprintln!("first connection error: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::answer_200;

    #[test]
    fn uas_answer_copies_the_transaction_headers() {
        let req = b"MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/WS p;branch=z9hG4bK1\r\nv: SIP/2.0/WS a.invalid;branch=z9hG4bK0\r\n\
            To: <sip:b@x>\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 3 MESSAGE\r\nContent-Length: 5\r\n\r\nhello";
        let mut out = Vec::new();
        answer_200(req, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS p;branch=z9hG4bK1\r\nv: SIP/2.0/WS a.invalid;branch=z9hG4bK0\r\n\
             To: <sip:b@x>;tag=uas\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 3 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
