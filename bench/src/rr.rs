//! `rr` mode: C connections, each keeping W OPTIONS in flight; requests/s, latency quantiles and
//! the server's CPU seconds over the measurement window.

use crate::conn::Target;
use crate::hist::Hist;
use crate::measure::{self, Shared, Window};
use crate::ws::{self, Masker, Opcode};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Parameters of a request/response run.
pub struct RrArgs {
    /// Server address, and TLS or not.
    pub target: Target,
    /// Connections.
    pub conns: usize,
    /// Requests in flight per connection.
    pub window: usize,
    /// Request-URI and To URI.
    pub ruri: String,
    /// The measurement window.
    pub window_args: Window,
}

pub(crate) fn write_request(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    m: &mut Masker,
    req: (&str, usize, u64),
) {
    let (ruri, conn, cseq) = req;
    scratch.clear();
    let _ = write!(
        scratch,
        "OPTIONS {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/WS bench{conn}.invalid;rport;branch=z9hG4bK-{conn}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         To: <{ruri}>\r\n\
         From: <sip:sipbench@bench.invalid>;tag=b{conn}\r\n\
         Call-ID: bench-{conn}@sipbench\r\n\
         CSeq: {cseq} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    m.push_frame(out, 1, scratch);
}

/// `(status code, CSeq number)` of a SIP response.
pub(crate) fn parse_response(p: &[u8]) -> Option<(u16, u64)> {
    let code = p.get(8..12)?;
    if !p.starts_with(b"SIP/2.0 ") {
        return None;
    }
    let code = std::str::from_utf8(code).ok()?.trim().parse().ok()?;
    let at = memchr::memmem::find(p, b"\r\nCSeq:")? + 7;
    let rest = p.get(at..)?;
    let digits = rest.iter().skip_while(|b| **b == b' ');
    let mut n: u64 = 0;
    let mut any = false;
    for b in digits {
        if b.is_ascii_digit() {
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            any = true;
        } else {
            break;
        }
    }
    any.then_some((code, n))
}

async fn conn_task(
    target: Arc<Target>,
    ruri: Arc<str>,
    id: usize,
    w: usize,
    sh: Arc<Shared>,
) -> std::io::Result<Hist> {
    let (mut s, _) = target.open(None).await?;
    let mut buf = ws::handshake(&mut s, &target.addr, "/").await?;
    let mut m = Masker::new();
    let mut out = Vec::with_capacity(512 * w);
    let mut scratch = Vec::with_capacity(512);
    let mut sent_at = vec![Instant::now(); w];
    let mut hist = Hist::new();
    // Slot i sends CSeq i+1, i+1+W, ...: a response's CSeq names its slot, in any order.
    for slot in 0..w {
        write_request(&mut out, &mut scratch, &mut m, (&ruri, id, slot as u64 + 1));
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
            if sh.stop.load(Ordering::Relaxed) {
                break;
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
        let now = Instant::now();
        let stop = sh.stop.load(Ordering::Relaxed);
        let measuring = sh.measuring.load(Ordering::Relaxed);
        let mut pos = 0;
        while let Some(f) = ws::parse_frame(&buf[pos..]) {
            let payload = &buf[pos + f.start..pos + f.end];
            match f.opcode {
                Opcode::Text | Opcode::Binary if f.fin => match parse_response(payload) {
                    Some((code, cseq)) if cseq >= 1 => {
                        let slot = ((cseq - 1) % w as u64) as usize;
                        if code != 200 {
                            sh.non200.fetch_add(1, Ordering::Relaxed);
                        }
                        if measuring && !stop {
                            let ns = now.duration_since(sent_at[slot]).as_nanos() as u64;
                            hist.record(ns);
                        }
                        outstanding -= 1;
                        if !stop {
                            write_request(
                                &mut out,
                                &mut scratch,
                                &mut m,
                                (&ruri, id, cseq + w as u64),
                            );
                            sent_at[slot] = now;
                            outstanding += 1;
                        }
                    }
                    _ => {
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Opcode::Ping => {
                    let p = payload.to_vec();
                    m.push_frame(&mut out, 0xA, &p);
                }
                Opcode::Close => {
                    return Err(std::io::Error::other("server sent close"));
                }
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
            break;
        }
    }
    Ok(hist)
}

/// Run the scenario; prints one `key=value` result line and a human summary.
pub async fn run(a: RrArgs) -> Result<(), String> {
    let sh = Arc::new(Shared::default());
    let target = Arc::new(a.target.clone());
    let ruri: Arc<str> = a.ruri.clone().into();
    let tasks = (0..a.conns)
        .map(|id| {
            tokio::spawn(conn_task(
                target.clone(),
                ruri.clone(),
                id,
                a.window,
                sh.clone(),
            ))
        })
        .collect();
    let m = measure::window(&a.window_args, &sh).await;
    let c = measure::collect(tasks, Duration::from_secs(5)).await;
    let n = c.hist.count();
    println!(
        "RESULT mode=rr scheme={} conns={} window={} secs={:.2} requests={} rps={:.0} {}",
        a.target.scheme(),
        a.conns,
        a.window,
        m.elapsed,
        n,
        n as f64 / m.elapsed,
        measure::result_tail(n, &c, &m, &sh, "req_per_cpu_s")
    );
    if let Some(e) = c.first_err {
        eprintln!("first connection error: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn response_cseq() {
        let r = b"SIP/2.0 200 OK\r\nVia: x\r\nCSeq: 4711 OPTIONS\r\n\r\n";
        assert_eq!(parse_response(r), Some((200, 4711)));
        assert_eq!(parse_response(b"SIP/2.0 200 OK\r\n\r\n"), None);
    }
}
