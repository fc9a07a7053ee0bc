//! RFC 4475 torture tests: every §3.1.1 valid message parses and passes
//! [`Message::validate_for_proxy`]; every §3.1.2 invalid message is rejected
//! by [`Message::parse`] or by `validate_for_proxy`, for the stated reason.

use bytes::Bytes;

use super::error::ParseError;
use super::headers::Method;
use super::message::Message;
use super::uri::unescape;

/// Parses and validates one message.
fn check(data: &'static [u8]) -> Result<Message, ParseError> {
    let m = Message::parse(Bytes::from_static(data))?;
    m.validate_for_proxy()?;
    Ok(m)
}

macro_rules! dat {
    ($name:literal) => {
        (
            $name,
            &include_bytes!(concat!("testdata/", $name, ".dat"))[..],
        )
    };
}

/// §3.1.1: valid messages, with the body length each must frame.
const VALID: [(&str, &[u8], usize); 13] = {
    macro_rules! v {
        ($name:literal, $len:expr) => {
            (
                $name,
                include_bytes!(concat!("testdata/", $name, ".dat")),
                $len,
            )
        };
    }
    [
        v!("wsinv", 150),
        v!("intmeth", 0),
        v!("esc01", 150),
        v!("escnull", 0),
        v!("esc02", 0),
        v!("lwsdisp", 0),
        v!("longreq", 150),
        v!("dblreq", 0),
        v!("semiuri", 0),
        v!("transports", 0),
        v!("mpart01", 553),
        v!("unreason", 154),
        v!("noreason", 0),
    ]
};

#[test]
fn valid_messages_parse_and_validate() {
    for (name, data, body_len) in VALID {
        let m = check(data).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(m.body().len(), body_len, "{name}");
        if let Some(cl) = m.content_length() {
            assert_eq!(cl as usize, body_len, "{name}");
        }
        assert!(m.top_via().is_ok(), "{name}");
        assert!(m.cseq().is_ok(), "{name}");
    }
}

/// §3.1.2: invalid messages and why each is rejected.
#[test]
fn invalid_messages_are_rejected() {
    let cases: [((&str, &[u8]), ParseError); 19] = [
        (dat!("badinv01"), ParseError::BadParams), // §3.1.2.1: Via ";;,;"
        (
            dat!("clerr"), // §3.1.2.2
            ParseError::ContentLengthTooLarge {
                declared: 9999,
                available: 154,
            },
        ),
        (dat!("ncl"), ParseError::BadContentLength), // §3.1.2.3: -999
        (dat!("scalar02"), ParseError::BadCSeq("number out of range")), // §3.1.2.4
        (dat!("scalarlg"), ParseError::BadCSeq("number out of range")), // §3.1.2.5
        (dat!("quotbal"), ParseError::BadQuotedString), // §3.1.2.6
        (
            dat!("ltgtruri"),
            ParseError::BadStartLine("bad Request-URI"),
        ), // §3.1.2.7
        (dat!("lwsruri"), ParseError::BadStartLine("bad SIP-Version")), // §3.1.2.8
        (
            dat!("lwsstart"),
            ParseError::BadStartLine("bad Request-URI"),
        ), // §3.1.2.9
        (dat!("trws"), ParseError::BadStartLine("bad SIP-Version")), // §3.1.2.10
        (
            dat!("escruri"),
            ParseError::BadUri("headers not allowed in Request-URI"),
        ), // §3.1.2.11
        (dat!("baddate"), ParseError::BadDate),      // §3.1.2.12
        (
            dat!("regbadct"), // §3.1.2.13
            ParseError::BadNameAddr("addr-spec with ? or , needs <>"),
        ),
        (
            dat!("badaspec"), // §3.1.2.14
            ParseError::BadNameAddr("white space or nothing in URI"),
        ),
        (
            dat!("baddn"), // §3.1.2.15: unquoted "Watson, Thomas"
            ParseError::BadNameAddr("addr-spec with ? or , needs <>"),
        ),
        (dat!("badvers"), ParseError::UnsupportedVersion), // §3.1.2.16
        (dat!("mismatch01"), ParseError::CSeqMethodMismatch), // §3.1.2.17
        (dat!("mismatch02"), ParseError::CSeqMethodMismatch), // §3.1.2.18
        (
            dat!("bigcode"),
            ParseError::BadStartLine("status code not in 100..=699"),
        ), // §3.1.2.19
    ];
    for ((name, data), err) in cases {
        assert_eq!(check(data).err(), Some(err), "{name}");
    }
    assert_eq!(ParseError::UnsupportedVersion.reply_code(), 505);
}

/// §3.3 and §3.4 messages whose problem is outside the parser's remit still
/// get the answer the RFC asks for where the parser decides it.
#[test]
fn transaction_and_application_layer_messages() {
    let rejected: [((&str, &[u8]), ParseError); 4] = [
        (dat!("badbranch"), ParseError::EmptyBranch), // §3.2.1 (400 expected)
        (dat!("insuf"), ParseError::MissingHeader("From")), // §3.3.1
        (dat!("multi01"), ParseError::DuplicateHeader("From")), // §3.3.8
        (dat!("mcl01"), ParseError::DuplicateContentLength), // §3.3.9
    ];
    for ((name, data), err) in rejected {
        assert_eq!(check(data).err(), Some(err), "{name}");
    }
    for (name, data) in [
        dat!("bcast"),
        dat!("bext01"),
        dat!("cparam01"),
        dat!("cparam02"),
        dat!("inv2543"),
        dat!("invut"),
        dat!("regaut01"),
        dat!("regescrt"),
        dat!("sdp01"),
        dat!("unkscm"),
        dat!("unksm2"),
        dat!("zeromf"),
        dat!("novelsc"),
    ] {
        assert!(check(data).is_ok(), "{name}");
    }
}

#[test]
fn wsinv_details() {
    let (_, data) = dat!("wsinv");
    let m = check(data).unwrap();
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(
        m.ruri(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name(), Some(r#"J Rosenberg \\\""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards(), Ok(Some(68)));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, "INVITE"));
    let vias: Vec<&str> = m.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(m.top_via().unwrap().host(), "192.0.2.2");
    assert_eq!(m.top_via().unwrap().branch(), Some("390skdjuw"));
    let last = super::via::Via::parse(vias[2]).unwrap();
    assert_eq!((last.transport(), last.host()), ("UDP", "192.168.255.111"));
    assert_eq!(last.branch(), Some("z9hG4bK30239"));
    assert_eq!(m.header("s"), Some(""));
    assert_eq!(
        m.header("NewFangledHeader"),
        Some("newfangled value   continued newfangled value")
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let contact = m.contacts().next().unwrap().unwrap();
    match contact {
        super::name_addr::Contact::Addr(na) => {
            assert_eq!(na.param("q"), Some(Some("0.33")));
            assert_eq!(na.param("secondparam"), Some(None));
        }
        super::name_addr::Contact::Wildcard => panic!("wildcard"),
    }
}

#[test]
fn escapes_and_unusual_tokens() {
    let (_, data) = dat!("esc01");
    let m = check(data).unwrap();
    let u = m.request_uri().unwrap();
    assert_eq!(&*unescape(u.user().unwrap()), b"sips:user@example.com");
    let (_, data) = dat!("escnull");
    let m = check(data).unwrap();
    let to = m.to().unwrap();
    assert!(unescape(to.uri().unwrap().user().unwrap()).contains(&0));
    let (_, data) = dat!("intmeth");
    let m = check(data).unwrap();
    assert_eq!(m.method(), Some(Method::Other));
    assert_eq!(
        m.method_str(),
        Some("!interesting-Method0123456789_*+`.%indeed'~")
    );
    let (_, data) = dat!("esc02");
    let m = check(data).unwrap();
    assert_eq!(m.method_str(), Some("RE%47IST%45R"));
    assert_eq!(m.method(), Some(Method::Other));
    let (_, data) = dat!("noreason");
    let m = check(data).unwrap();
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
    let (_, data) = dat!("dblreq");
    let m = check(data).unwrap();
    assert_eq!(m.method(), Some(Method::Register));
    assert!(m.as_bytes().ends_with(b"Content-Length: 0\r\n\r\n"));
}

/// Every RFC 4475 message, cut and mutated deterministically, goes through
/// [`fuzz_parse`](super::fuzz_parse) without a panic.
#[test]
fn mutated_corpus_never_panics() {
    let corpus = [
        dat!("wsinv"),
        dat!("intmeth"),
        dat!("esc01"),
        dat!("escnull"),
        dat!("esc02"),
        dat!("lwsdisp"),
        dat!("longreq"),
        dat!("dblreq"),
        dat!("semiuri"),
        dat!("transports"),
        dat!("mpart01"),
        dat!("unreason"),
        dat!("noreason"),
        dat!("badinv01"),
        dat!("clerr"),
        dat!("ncl"),
        dat!("quotbal"),
        dat!("ltgtruri"),
        dat!("escruri"),
        dat!("baddate"),
        dat!("regbadct"),
        dat!("badaspec"),
        dat!("baddn"),
        dat!("bigcode"),
        dat!("inv2543"),
        dat!("bcast"),
        dat!("cparam01"),
        dat!("sdp01"),
    ];
    const BYTES: &[u8] = b"\r\n ;,:<>\"\\=@[]%0z9hG4bK";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (_, data) in corpus {
        super::fuzz_parse(data);
        for cut in (0..data.len()).step_by(7) {
            super::fuzz_parse(&data[..cut]);
        }
        for _ in 0..300 {
            let mut buf = data.to_vec();
            for _ in 0..1 + next() % 3 {
                let at = (next() % buf.len() as u64) as usize;
                let with = BYTES[(next() % BYTES.len() as u64) as usize];
                match next() % 3 {
                    0 => buf[at] = with,
                    1 => buf.insert(at, with),
                    _ => {
                        buf.remove(at);
                    }
                }
            }
            super::fuzz_parse(&buf);
        }
    }
}
