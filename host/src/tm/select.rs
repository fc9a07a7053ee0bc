//! The stateful proxy's choice of the final response (RFC 3261 §16.7 steps 6 and 7), as
//! OpenSIPS tm's `t_pick_branch` ranks branches.

use crate::sip::Message;

/// What the proxy sends upstream once every branch has a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Forward the final response of this branch.
    Forward(usize),
    /// Send a response of this code generated here: 500 in place of a chosen 503 response
    /// (§16.7 step 6), or the code of a branch that ended without a response (a timeout:
    /// 408; an unreachable next hop: 503).
    Generate(u16),
}

/// The result of [`best_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Which branch won, and what to send.
    pub choice: Choice,
    /// The branch whose final code won.
    pub branch: usize,
    /// The code sent upstream.
    pub code: u16,
    /// For a chosen 401 or 407, every other branch that got a 401 or 407: their
    /// WWW-Authenticate and Proxy-Authenticate values are added to the response (§16.7 step
    /// 7, see [`challenge_headers`]). Empty otherwise.
    pub challenges: Vec<usize>,
}

/// The rank of a final code, lower is better (OpenSIPS tm `branch_prio`): 2xx first, then
/// 6xx (§16.7 step 6: a 6xx is chosen over anything else), 3xx, then the 4xx that the client
/// can act on (401, 407, 415, 420, 484: §16.7 step 6 "SHOULD give preference"), other 4xx,
/// 5xx, 408 and last 503. A 487 of a cancelled transaction ranks first: the client asked for
/// it.
fn rank(code: u16, cancelled: bool) -> u32 {
    let c = u32::from(code);
    match code {
        487 if cancelled => 0,
        100..=299 => c,
        600..=699 => c - 300,
        300..=399 => c + 100,
        401 => 500,
        407 => 501,
        415 => 502,
        420 => 503,
        484 => 504,
        408 => 800,
        503 => 801,
        _ => c + 200,
    }
}

/// Chooses the response a stateful proxy sends upstream (RFC 3261 §16.7 step 6) from the
/// final codes of its branches (`None`: still pending, in which case there is no choice yet,
/// nor with no branch at all). Ties go to the earlier branch. A chosen 503 response becomes
/// a generated 500 (a 503 would tell the client that this proxy is unavailable); a branch
/// that ended with 503 and no response (§16.9: its next hop could not be reached) is
/// answered 503, as the stateless relay answers it: this proxy is not the one unavailable,
/// and a client may try another server (RFC 3263 §4.3).
/// `responded[i]` says whether branch `i` has a response to forward (a branch ended by a
/// timeout has none: its code is generated).
pub fn best_response(
    codes: &[Option<u16>],
    responded: &[bool],
    cancelled: bool,
) -> Option<Selection> {
    let mut best: Option<(usize, u16)> = None;
    for (i, code) in codes.iter().enumerate() {
        let code = (*code)?;
        if best.is_none_or(|(_, b)| rank(code, cancelled) < rank(b, cancelled)) {
            best = Some((i, code));
        }
    }
    let (branch, code) = best?;
    let challenge = |c: Option<u16>| matches!(c, Some(401 | 407));
    let challenges = if challenge(Some(code)) {
        (0..codes.len())
            .filter(|&i| i != branch && challenge(codes[i]))
            .collect()
    } else {
        Vec::new()
    };
    let responded_b = responded.get(branch).copied().unwrap_or(false);
    let choice = if code == 503 && responded_b {
        Choice::Generate(500)
    } else if responded_b {
        Choice::Forward(branch)
    } else {
        Choice::Generate(code)
    };
    let code = match choice {
        Choice::Generate(c) => c,
        Choice::Forward(_) => code,
    };
    Some(Selection {
        choice,
        branch,
        code,
        challenges,
    })
}

/// The WWW-Authenticate and Proxy-Authenticate header fields of `responses`, in order, as
/// `(name, value)`: what §16.7 step 7 adds to the chosen 401 or 407 from the others.
pub fn challenge_headers<'m>(responses: &[&'m Message]) -> Vec<(&'static str, &'m str)> {
    let mut out = Vec::new();
    for r in responses {
        for name in ["WWW-Authenticate", "Proxy-Authenticate"] {
            out.extend(r.headers(name).map(|v| (name, v)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn pick(codes: &[Option<u16>]) -> Option<(Choice, u16)> {
        let responded = vec![true; codes.len()];
        best_response(codes, &responded, false).map(|s| (s.choice, s.code))
    }

    #[test]
    fn waits_for_every_branch() {
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&[Some(486), None]), None);
    }

    #[test]
    fn ranks_as_16_7_step_6() {
        // 6xx beats everything but 2xx.
        assert_eq!(
            pick(&[Some(486), Some(603)]),
            Some((Choice::Forward(1), 603))
        );
        assert_eq!(
            pick(&[Some(302), Some(603)]),
            Some((Choice::Forward(1), 603))
        );
        // The lowest class otherwise.
        assert_eq!(
            pick(&[Some(500), Some(302), Some(404)]),
            Some((Choice::Forward(1), 302))
        );
        assert_eq!(
            pick(&[Some(500), Some(404)]),
            Some((Choice::Forward(1), 404))
        );
        // Challenges and the other actionable 4xx are preferred within 4xx.
        assert_eq!(
            pick(&[Some(404), Some(407)]),
            Some((Choice::Forward(1), 407))
        );
        assert_eq!(
            pick(&[Some(486), Some(484)]),
            Some((Choice::Forward(1), 484))
        );
        // 408 (a timeout) only when nothing better came; 503 last, sent as 500.
        assert_eq!(
            pick(&[Some(408), Some(500)]),
            Some((Choice::Forward(1), 500))
        );
        assert_eq!(
            pick(&[Some(503), Some(408)]),
            Some((Choice::Forward(1), 408))
        );
        assert_eq!(pick(&[Some(503)]), Some((Choice::Generate(500), 500)));
        // Ties: the first branch.
        assert_eq!(
            pick(&[Some(486), Some(486)]),
            Some((Choice::Forward(0), 486))
        );
    }

    #[test]
    fn cancelled_prefers_487_and_timeouts_are_generated() {
        let s = best_response(&[Some(404), Some(487)], &[true, true], true).unwrap();
        assert_eq!((s.choice, s.code), (Choice::Forward(1), 487));
        let s = best_response(&[Some(404), Some(487)], &[true, true], false).unwrap();
        assert_eq!(s.code, 404);
        let s = best_response(&[Some(408)], &[false], false).unwrap();
        assert_eq!(
            (s.choice, s.code, s.branch),
            (Choice::Generate(408), 408, 0)
        );
    }

    #[test]
    fn challenges_are_merged() {
        let s = best_response(
            &[Some(401), Some(486), Some(407), Some(401)],
            &[true; 4],
            false,
        )
        .unwrap();
        assert_eq!(
            (s.choice, s.challenges.clone()),
            (Choice::Forward(0), vec![2, 3])
        );
        let r = |h: &str| {
            Message::parse(Bytes::from(format!(
                "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:b@b>;tag=2\r\nCall-ID: c\r\n\
                 CSeq: 1 INVITE\r\n{h}\r\nContent-Length: 0\r\n\r\n"
            )))
            .unwrap()
        };
        let (a, b) = (
            r("WWW-Authenticate: Digest realm=\"a\", nonce=\"1\""),
            r("Proxy-Authenticate: Digest realm=\"b\", nonce=\"2\""),
        );
        assert_eq!(
            challenge_headers(&[&a, &b]),
            vec![
                ("WWW-Authenticate", "Digest realm=\"a\", nonce=\"1\""),
                ("Proxy-Authenticate", "Digest realm=\"b\", nonce=\"2\""),
            ]
        );
        // No merge for other codes.
        let s = best_response(&[Some(302), Some(401)], &[true; 2], false).unwrap();
        assert_eq!((s.code, s.challenges), (302, vec![]));
    }
}
