//! A registering user agent as browsers run one (JsSIP, SIP.js): one AoR `userN@domain`, one
//! Call-ID with CSeq counting up, a `.invalid` Contact with `transport=ws` (RFC 7118 §5), and
//! the digest answer to a 401 (`digest`). Shared by the `register` and `storm` modes.

use crate::digest::{self, Challenge};
use crate::rr::parse_response;
use crate::ws::{self, Masker, Opcode};
use std::fmt::Write as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a response to our REGISTER means for the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not ours (another CSeq) or provisional: keep waiting.
    Ignore,
    /// 401/407 with an MD5 challenge: send the REGISTER again with credentials.
    Challenged,
    /// 200: registered.
    Registered,
    /// Any other final answer, or a challenge to credentials that were not stale (a wrong
    /// password); the status code.
    Failed(u16),
}

/// One bench user and its registration state.
pub struct Ua {
    n: usize,
    domain: String,
    call_id: String,
    cseq: u64,
    expires: u32,
    ch: Option<Challenge>,
    nc: u32,
    cnonce: u64,
    salt: u32,
    /// `(realm, HA1)` of the last challenge's realm.
    ha1: Option<(String, String)>,
    sent_auth: bool,
    /// Use a wrong password (to check that the server refuses it).
    pub wrong_password: bool,
    msg: String,
}

impl Ua {
    /// User number `n` (`user<n>@domain`, password `digest::password(n)`); `salt` makes the
    /// Call-ID differ between runs; `expires` is asked in Contact and Expires.
    pub fn new(n: usize, domain: &str, salt: u32, expires: u32) -> Self {
        Ua {
            n,
            domain: domain.to_string(),
            call_id: format!("reg{n}-{salt:08x}@sipbench.invalid"),
            cseq: 0,
            expires,
            ch: None,
            nc: 0,
            cnonce: u64::from(salt) << 20 | n as u64,
            salt,
            ha1: None,
            sent_auth: false,
            wrong_password: false,
            msg: String::with_capacity(1024),
        }
    }

    /// Append the next REGISTER as a WebSocket frame to `out`: with an `Authorization` header
    /// answering the held challenge (`nc` one higher than last time) when `with_auth` and one
    /// is held, else without credentials.
    pub fn push_register(&mut self, out: &mut Vec<u8>, m: &mut Masker, with_auth: bool) {
        self.cseq += 1;
        let (n, d, cseq, exp) = (self.n, &self.domain, self.cseq, self.expires);
        let msg = &mut self.msg;
        msg.clear();
        let _ = write!(
            msg,
            "REGISTER sip:{d} SIP/2.0\r\n\
             Via: SIP/2.0/WS u{n}.invalid;branch=z9hG4bK-r{n}-{cseq}-{salt:x}\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:user{n}@{d}>\r\n\
             From: <sip:user{n}@{d}>;tag=r{n}x{salt:x}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:u{n}@u{n}.invalid;transport=ws>;expires={exp}\r\n\
             Expires: {exp}\r\n",
            salt = self.salt,
            cid = self.call_id
        );
        self.sent_auth = false;
        if let (true, Some(ch)) = (with_auth, &self.ch) {
            if self.ha1.as_ref().is_none_or(|(r, _)| *r != ch.realm) {
                let user = format!("user{n}");
                let mut pw = digest::password(n);
                if self.wrong_password {
                    pw.push('x');
                }
                let h = digest::ha1(&user, &ch.realm, &pw);
                self.ha1 = Some((ch.realm.clone(), h));
            }
            self.nc += 1;
            self.cnonce = self.cnonce.wrapping_add(1 << 40);
            let ha1 = self.ha1.as_ref().map(|(_, h)| h.as_str()).unwrap_or("");
            let user = format!("user{n}");
            let cnonce = format!("{:x}", self.cnonce);
            let uri = format!("sip:{d}");
            digest::write_authorization(
                msg,
                ch,
                (&user, ha1),
                ("REGISTER", &uri),
                self.nc,
                &cnonce,
            );
            self.sent_auth = true;
        }
        msg.push_str(
            "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n\
             User-Agent: sipbench\r\nContent-Length: 0\r\n\r\n",
        );
        m.push_frame(out, 1, msg.as_bytes());
    }

    /// Judge `resp`, a message the server sent on our connection.
    pub fn on_response(&mut self, resp: &[u8]) -> Step {
        let Some((code, cseq)) = parse_response(resp) else {
            return Step::Ignore;
        };
        if cseq != self.cseq || code < 200 {
            return Step::Ignore;
        }
        match code {
            200 => Step::Registered,
            401 | 407 => match digest::md5_challenge(resp) {
                Some(ch) if !self.sent_auth || ch.stale => {
                    self.ch = Some(ch);
                    self.nc = 0;
                    Step::Challenged
                }
                _ => Step::Failed(code),
            },
            c => Step::Failed(c),
        }
    }
}

/// Read frames from `s` until a complete text (or binary) message arrives; answers pings.
pub async fn next_text<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    m: &mut Masker,
) -> std::io::Result<Vec<u8>> {
    let mut tmp = [0u8; 8192];
    loop {
        if let Some(f) = ws::parse_frame(buf) {
            let payload = buf[f.start..f.end].to_vec();
            buf.drain(..f.end);
            match f.opcode {
                Opcode::Text | Opcode::Binary => return Ok(payload),
                Opcode::Ping => {
                    let mut out = Vec::new();
                    m.push_frame(&mut out, 0xA, &payload);
                    s.write_all(&out).await?;
                }
                Opcode::Close => return Err(std::io::Error::other("server sent close")),
                _ => {}
            }
            continue;
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::Error::other("server closed the connection"));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Send REGISTERs on `s` until `ua` is registered (a 401 answered with credentials on the
/// way, or the held nonce reused first when `reuse`); the number of challenges it took.
pub async fn register<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    m: &mut Masker,
    ua: &mut Ua,
    reuse: bool,
) -> Result<u32, String> {
    let mut out = Vec::with_capacity(1024);
    ua.push_register(&mut out, m, reuse);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut challenges = 0;
    loop {
        let p = next_text(s, buf, m).await.map_err(|e| e.to_string())?;
        match ua.on_response(&p) {
            Step::Ignore => {}
            Step::Registered => return Ok(challenges),
            Step::Challenged if challenges < 3 => {
                challenges += 1;
                out.clear();
                ua.push_register(&mut out, m, true);
                s.write_all(&out).await.map_err(|e| e.to_string())?;
            }
            Step::Challenged => return Err("challenged again and again".into()),
            Step::Failed(code) => {
                let first = p.split(|b| *b == b'\r').next().unwrap_or(&[]);
                return Err(format!(
                    "REGISTER answered {code}: {}",
                    String::from_utf8_lossy(first)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &[u8]) -> String {
        let f = ws::parse_frame(out).unwrap();
        let key = [
            out[f.start - 4],
            out[f.start - 3],
            out[f.start - 2],
            out[f.start - 1],
        ];
        let p: Vec<u8> = out[f.start..f.end]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i & 3])
            .collect();
        String::from_utf8(p).unwrap()
    }

    #[test]
    fn challenge_then_credentials_with_counting_nc() {
        let mut ua = Ua::new(7, "example.com", 1, 600);
        let mut m = Masker::new();
        let mut out = Vec::new();
        ua.push_register(&mut out, &mut m, true);
        let r = text(&out);
        assert!(r.starts_with("REGISTER sip:example.com SIP/2.0\r\n"), "{r}");
        assert!(!r.contains("Authorization"), "{r}");
        assert!(r.contains("CSeq: 1 REGISTER\r\n"), "{r}");
        let c401 = "SIP/2.0 401 Unauthorized\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest \
            realm=\"example.com\", nonce=\"abc\", qop=\"auth\"\r\n\r\n";
        assert_eq!(ua.on_response(c401.as_bytes()), Step::Challenged);
        out.clear();
        ua.push_register(&mut out, &mut m, true);
        let r = text(&out);
        assert!(r.contains("CSeq: 2 REGISTER\r\n"), "{r}");
        assert!(r.contains("username=\"user7\""), "{r}");
        assert!(r.contains("nc=00000001"), "{r}");
        // A 401 to credentials that is not stale: a wrong password.
        let c401 = c401.replace("CSeq: 1", "CSeq: 2");
        assert_eq!(ua.on_response(c401.as_bytes()), Step::Failed(401));
        assert_eq!(
            ua.on_response(b"SIP/2.0 200 OK\r\nCSeq: 2 REGISTER\r\n\r\n"),
            Step::Registered
        );
        out.clear();
        ua.push_register(&mut out, &mut m, true);
        assert!(text(&out).contains("nc=00000002"));
    }
}
