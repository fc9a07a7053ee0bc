//! The registrar (RFC 3261 §10.3, RFC 5626 §6) on sequences of REGISTERs for a few AoRs,
//! interleaved with time passing, connections closing and expiry sweeps. The input is a
//! program: each operation is decoded from a few bytes into a well-formed REGISTER (query,
//! wildcard, or 1-3 contacts with chosen expiries, q-values and instance/reg-id), so the
//! fuzzer explores the table's states rather than the SIP parser.
//!
//! Invariants, checked after every operation:
//! * no panic;
//! * a refused REGISTER leaves the table exactly as it was (`ul_dump` equal);
//! * a contact asking for a non-zero expiry below `min_expires` is refused with 423;
//! * after an accepted REGISTER every contact it added is bound with its call-id, CSeq and
//!   expiry `min(asked, max_expires)`, every contact it removed is gone, and the 200 OK lists
//!   exactly the live bindings;
//! * an AoR never has more live bindings than `max_contacts`, nor two for the same contact
//!   (same `+sip.instance`/`reg-id`, or same URI without them);
//! * every live binding expires within `max_expires`;
//! * a closed connection leaves no binding behind; after a sweep, the counts equal the live
//!   bindings.
#![no_main]
use sipcore::sip::{Message, Uri};
use sipcore::usrloc::{aor_of, Binding, Flow, RegError, Registrar, RegistrarConfig};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const AORS: [&str; 3] = [
    "sip:alice@example.com",
    "sip:bob@example.com",
    "sips:carol@Example.COM",
];
const URIS: [&str; 5] = [
    "sip:a1b2c3@df7jal23ls0d.invalid;transport=ws",
    "sip:alice@192.0.2.7:5060",
    "sip:x@[2001:db8::1]:5080;ob",
    "sip:y@host.invalid;transport=tcp",
    "sip:bob@198.51.100.9",
];
/// Contact `expires` parameter choices (`None`: absent).
const EXPIRES: [Option<u32>; 7] = [
    None,
    Some(0),
    Some(30),
    Some(60),
    Some(600),
    Some(3600),
    Some(100_000),
];
/// `Expires` header choices.
const HDR_EXPIRES: [Option<u32>; 4] = [None, Some(0), Some(120), Some(30)];
const QS: [Option<&str>; 4] = [None, Some("0.5"), Some("1"), Some("0.0")];
/// `+sip.instance` / `reg-id` choices.
const INSTANCES: [Option<(&str, u32)>; 4] = [
    None,
    Some(("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>", 1)),
    Some(("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>", 2)),
    Some(("<urn:uuid:11111111-0000-1000-8000-000a95a0e128>", 1)),
];

// `..default()` keeps the target compiling when the registrar gains settings.
#[allow(clippy::needless_update)]
fn config() -> RegistrarConfig {
    RegistrarConfig {
        default_expires: 3600,
        min_expires: 60,
        max_expires: 7200,
        max_contacts: 3,
        ..RegistrarConfig::default()
    }
}

/// Input bytes, read one at a time (0 once exhausted).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }
}

/// One contact of a generated REGISTER.
#[derive(Clone, Copy)]
struct Want {
    uri: &'static str,
    expires: Option<u32>,
    q: Option<&'static str>,
    instance: Option<(&'static str, u32)>,
}

impl Want {
    fn render(&self, out: &mut String) {
        let _ = write!(out, "<{}>", self.uri);
        if let Some(e) = self.expires {
            let _ = write!(out, ";expires={e}");
        }
        if let Some(q) = self.q {
            let _ = write!(out, ";q={q}");
        }
        if let Some((i, r)) = self.instance {
            let _ = write!(out, ";+sip.instance=\"{i}\";reg-id={r}");
        }
    }

    /// The registrar's rule (RFC 5626 §6, RFC 3261 §10.3 step 7): same instance and reg-id
    /// when both sides have them, else same URI.
    fn matches(&self, b: &Binding) -> bool {
        match (self.instance, &b.instance, b.reg_id) {
            (Some((i, r)), Some(bi), Some(br)) => i == bi && r == br,
            _ => self.uri == b.uri,
        }
    }

    /// The binding this contact creates: same instance and reg-id if it has them, else same
    /// URI and no instance.
    fn created(&self, b: &Binding) -> bool {
        match self.instance {
            Some((i, r)) => b.instance.as_deref() == Some(i) && b.reg_id == Some(r),
            None => b.instance.is_none() && self.uri == b.uri,
        }
    }
}

/// The registrar under test and the simulated clock.
struct World {
    reg: Registrar,
    cfg: RegistrarConfig,
    now: Instant,
    /// Last CSeq sent per (AoR, Call-ID) choice.
    cseq: [[u32; 2]; 3],
    branch: u32,
    start: Instant,
}

fn aor_key(to: &str) -> String {
    aor_of(&Uri::parse(to).expect("AoR parses")).expect("sip/sips AoR")
}

fn flow(conn: u64) -> Flow {
    Flow {
        conn_id: conn,
        proto: if conn == 0 { "udp" } else { "ws" },
        peer: format!("192.0.2.{}:{}", conn + 1, 40000 + conn)
            .parse()
            .unwrap(),
        local: "127.0.0.1:8080".parse().unwrap(),
    }
}

impl World {
    fn register(&mut self, inp: &mut Input<'_>, wildcard: bool) {
        let a = usize::from(inp.byte()) % AORS.len();
        let conn = u64::from(inp.byte() % 4);
        let ctl = inp.byte();
        let cid = usize::from(ctl & 1);
        if ctl & 2 == 0 || self.cseq[a][cid] == 0 {
            self.cseq[a][cid] += 1;
        }
        let cseq = self.cseq[a][cid];
        let hdr_expires = if wildcard {
            if ctl & 4 == 0 {
                Some(0)
            } else {
                inp.pick(&HDR_EXPIRES)
            }
        } else {
            inp.pick(&HDR_EXPIRES)
        };
        let mut wants: Vec<Want> = Vec::new();
        if !wildcard {
            for _ in 0..inp.byte() % 4 {
                let w = Want {
                    uri: inp.pick(&URIS),
                    expires: inp.pick(&EXPIRES),
                    q: inp.pick(&QS),
                    instance: inp.pick(&INSTANCES),
                };
                // Distinct contacts within one request (see `check_saved`).
                let dup = wants
                    .iter()
                    .any(|o| o.uri == w.uri || (w.instance.is_some() && o.instance == w.instance));
                if !dup {
                    wants.push(w);
                }
            }
        }
        self.branch += 1;
        let to = AORS[a];
        let mut text = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{}\r\n\
             Max-Forwards: 70\r\nTo: <{to}>\r\nFrom: <{to}>;tag=t{}\r\n\
             Call-ID: reg-{a}-{cid}@fuzz\r\nCSeq: {cseq} REGISTER\r\n\
             User-Agent: fuzz\r\n",
            self.branch, self.branch
        );
        if let Some(e) = hdr_expires {
            let _ = write!(text, "Expires: {e}\r\n");
        }
        if wildcard {
            text.push_str("Contact: *\r\n");
        } else if ctl & 8 == 0 {
            for w in &wants {
                text.push_str("Contact: ");
                w.render(&mut text);
                text.push_str("\r\n");
            }
        } else if !wants.is_empty() {
            text.push_str("Contact: ");
            for (i, w) in wants.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                w.render(&mut text);
            }
            text.push_str("\r\n");
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        if std::env::var_os("FUZZ_DEBUG").is_some() {
            eprintln!("--- conn {conn} at +{:?}\n{text}", self.now - self.start);
        }
        let msg = Message::parse(text.into_bytes().into()).expect("generated REGISTER parses");

        let aor = aor_key(to);
        let before = self.reg.dump(self.now);
        let matched_before: Vec<usize> = wants
            .iter()
            .map(|w| {
                self.reg
                    .lookup(&aor, self.now)
                    .iter()
                    .filter(|b| w.matches(b))
                    .count()
            })
            .collect();
        let asked = |w: &Want| {
            w.expires
                .or(hdr_expires)
                .unwrap_or(self.cfg.default_expires)
        };
        let too_brief = wants.iter().any(|w| {
            let e = asked(w);
            e != 0 && e < self.cfg.min_expires
        });
        match self.reg.save(&msg, flow(conn), self.now) {
            Err(e) => {
                assert_eq!(
                    self.reg.dump(self.now),
                    before,
                    "refused REGISTER ({e}) changed the table"
                );
                if too_brief {
                    assert!(matches!(e, RegError::IntervalTooBrief { .. }), "{e:?}");
                }
                if wildcard && hdr_expires != Some(0) {
                    assert_eq!(e, RegError::BadWildcard);
                }
            }
            Ok(reply) => {
                assert!(!too_brief, "expiry below min_expires accepted");
                assert!(!wildcard || hdr_expires == Some(0), "bad wildcard accepted");
                let live = self.reg.lookup(&aor, self.now);
                assert_eq!(
                    reply.contacts.len(),
                    live.len(),
                    "200 OK lists other bindings"
                );
                if wildcard {
                    assert!(live.is_empty(), "Contact: * left bindings");
                }
                for (w, &had) in wants.iter().zip(&matched_before) {
                    let e = asked(w).min(self.cfg.max_expires);
                    if e == 0 {
                        let left = live.iter().filter(|b| w.matches(b)).count();
                        assert!(had == 0 || left < had, "expires=0 removed nothing");
                    } else {
                        let found: Vec<&Binding> = live.iter().filter(|b| w.created(b)).collect();
                        assert_eq!(
                            found.len(),
                            1,
                            "contact {} bound {} times",
                            w.uri,
                            found.len()
                        );
                        let b = found[0];
                        assert_eq!(b.uri, w.uri);
                        assert_eq!(b.cseq, cseq);
                        assert_eq!(b.call_id, format!("reg-{a}-{cid}@fuzz"));
                        assert_eq!(b.remaining(self.now), u64::from(e), "expiry");
                        assert_eq!(b.flow, flow(conn));
                    }
                }
            }
        }
    }

    /// Invariants that hold whatever happened before.
    fn check(&self) {
        let mut live_total = 0;
        let mut live_aors = 0;
        for to in AORS {
            let aor = aor_key(to);
            let live = self.reg.lookup(&aor, self.now);
            live_total += live.len();
            live_aors += usize::from(!live.is_empty());
            assert!(
                live.len() <= self.cfg.max_contacts,
                "{aor}: {} live bindings, max_contacts {}",
                live.len(),
                self.cfg.max_contacts
            );
            for (i, b) in live.iter().enumerate() {
                let left = b.remaining(self.now);
                assert!(
                    left >= 1 && left <= u64::from(self.cfg.max_expires),
                    "{left}"
                );
                for o in &live[i + 1..] {
                    match (&b.instance, b.reg_id, &o.instance, o.reg_id) {
                        (Some(i1), Some(r1), Some(i2), Some(r2)) => {
                            assert!(i1 != i2 || r1 != r2, "two bindings for one flow")
                        }
                        (None, _, None, _) => assert_ne!(b.uri, o.uri, "two bindings for one URI"),
                        _ => {}
                    }
                }
            }
            assert_eq!(self.reg.best(&aor, self.now).is_some(), !live.is_empty());
        }
        assert!(self.reg.contact_count() >= live_total);
        assert!(self.reg.len() >= live_aors);
        assert_eq!(
            self.reg.is_empty(),
            self.reg.contact_count() == 0,
            "AoR without bindings"
        );
    }

    fn sweep(&mut self) {
        self.reg.expire(self.now);
        let live: usize = AORS
            .iter()
            .map(|to| self.reg.lookup(&aor_key(to), self.now).len())
            .sum();
        assert_eq!(
            self.reg.contact_count(),
            live,
            "expired bindings left after a sweep"
        );
        let aors = AORS
            .iter()
            .filter(|to| !self.reg.lookup(&aor_key(to), self.now).is_empty())
            .count();
        assert_eq!(
            self.reg.len(),
            aors,
            "AoR without bindings left after a sweep"
        );
    }

    fn close(&mut self, conn: u64) {
        let before = self.reg.contact_count();
        let n = self.reg.remove_flow(conn);
        assert_eq!(before - self.reg.contact_count(), n, "remove_flow count");
        for to in AORS {
            for b in self.reg.lookup(&aor_key(to), self.now) {
                assert_ne!(b.flow.conn_id, conn, "binding over a closed connection");
            }
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let cfg = config();
    let t0 = Instant::now();
    let mut w = World {
        reg: Registrar::new(cfg),
        cfg,
        now: t0,
        cseq: [[0; 2]; 3],
        branch: 0,
        start: t0,
    };
    let mut inp = Input(data);
    for _ in 0..64 {
        if inp.0.is_empty() {
            break;
        }
        match inp.byte() % 8 {
            0..=3 => w.register(&mut inp, false),
            4 => w.register(&mut inp, true),
            5 => {
                let secs = u64::from(inp.byte()) * 30 + u64::from(inp.byte());
                w.now += Duration::from_secs(secs);
            }
            6 => {
                let conn = u64::from(inp.byte() % 3) + 1;
                w.close(conn);
            }
            _ => w.sweep(),
        }
        w.check();
    }
    let _ = w.reg.dump(w.now);
});
