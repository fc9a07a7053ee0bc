use super::*;
use crate::codec::decode;

/// A real HEPv3 packet (our encoder) whose SIP payload is `n` bytes.
fn packet(n: usize) -> Vec<u8> {
    crate::sender::tests::hep(&vec![b'x'; n]).to_vec()
}

/// Cuts a GSO buffer as the kernel does and decodes every datagram: each must be a valid
/// HEPv3 packet with the original payload and, when padded, one padding chunk more.
fn check_segments(buf: &[u8], segment: usize, originals: &[&[u8]]) {
    let datagrams: Vec<&[u8]> = buf.chunks(segment).collect();
    assert_eq!(datagrams.len(), originals.len());
    for (d, o) in datagrams.iter().zip(originals) {
        let got = decode(d).expect("padded packet decodes");
        let want = decode(o).unwrap();
        assert_eq!(got.payload, want.payload);
        assert_eq!(got.src, want.src);
        assert_eq!(got.correlation_id, want.correlation_id);
        let pad: Vec<_> = got
            .extra
            .iter()
            .filter(|c| c.vendor == PAD_VENDOR)
            .collect();
        if d.len() == o.len() {
            assert!(pad.is_empty());
            assert_eq!(d, o);
        } else {
            assert_eq!(pad.len(), 1);
            assert_eq!(pad[0].type_id, PAD_TYPE);
            assert_eq!(&d[..4], b"HEP3");
            assert_eq!(usize::from(u16::from_be_bytes([d[4], d[5]])), d.len());
            // The original chunks come first, unchanged.
            assert_eq!(&d[6..o.len()], &o[6..]);
        }
    }
}

fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(Vec::as_slice).collect()
}

#[test]
fn equal_packets_need_no_padding_and_fill_a_call() {
    let v: Vec<Vec<u8>> = (0..100).map(|_| packet(400)).collect();
    let p = refs(&v);
    let run = plan(&p, 1472).unwrap();
    assert_eq!(run.count, MAX_SEGMENTS);
    assert_eq!(run.segment, p[0].len());
    let mut buf = Vec::new();
    build(&mut buf, &p, run);
    assert_eq!(buf.len(), p[0].len() * MAX_SEGMENTS);
    check_segments(&buf, run.segment, &p[..run.count]);
}

#[test]
fn smaller_packets_are_padded_to_the_largest_but_the_last() {
    let v = vec![
        packet(400),
        packet(350),
        packet(420),
        packet(390),
        packet(380),
    ];
    let p = refs(&v);
    let run = plan(&p, 1472).unwrap();
    assert_eq!(run.count, 5);
    assert_eq!(run.segment, p[2].len());
    let mut buf = Vec::new();
    build(&mut buf, &p, run);
    // Four padded to the segment, the last as it is.
    assert_eq!(buf.len(), run.segment * 4 + p[4].len());
    check_segments(&buf, run.segment, &p);
}

#[test]
fn a_shortfall_smaller_than_a_chunk_header_raises_the_segment() {
    for short in 1..CHUNK_HEADER {
        let v = vec![packet(400 - short), packet(400), packet(100 + 300)];
        let p = refs(&v);
        let run = plan(&p, 1472).unwrap();
        assert_eq!(run.count, 3);
        assert_eq!(run.segment, p[1].len() + CHUNK_HEADER, "short by {short}");
        let mut buf = Vec::new();
        build(&mut buf, &p, run);
        check_segments(&buf, run.segment, &p);
    }
}

#[test]
fn the_last_packet_may_be_the_longest() {
    let v = vec![packet(300), packet(300), packet(360)];
    let p = refs(&v);
    let run = plan(&p, 1472).unwrap();
    assert_eq!(run.count, 3);
    // The last segment cannot be longer than the others: they grow to it.
    assert_eq!(run.segment, p[2].len());
    let mut buf = Vec::new();
    build(&mut buf, &p, run);
    check_segments(&buf, run.segment, &p);
}

#[test]
fn a_packet_far_from_the_first_ones_size_ends_the_run() {
    let v = vec![packet(400), packet(410), packet(900), packet(400)];
    let p = refs(&v);
    assert_eq!(plan(&p, 1472).unwrap().count, 2);
    let v = vec![packet(400), packet(410), packet(100)];
    assert_eq!(plan(&refs(&v), 1472).unwrap().count, 2);
    // Alone in its band: sent by itself.
    let v = vec![packet(400), packet(900)];
    assert_eq!(plan(&refs(&v), 1472), None);
    assert_eq!(plan(&refs(&v[..1]), 1472), None);
    assert_eq!(plan(&[], 1472), None);
}

#[test]
fn runs_stay_within_the_segment_limit_and_the_datagram_limit() {
    let v: Vec<Vec<u8>> = (0..10).map(|_| packet(1500)).collect();
    // Longer than the path allows per segment: never segmented.
    assert_eq!(plan(&refs(&v), 1472), None);
    let v: Vec<Vec<u8>> = (0..64).map(|_| packet(1300)).collect();
    let p = refs(&v);
    let run = plan(&p, 65_000).unwrap();
    assert!(run.segment * run.count <= MAX_TOTAL);
    assert_eq!(run.count, MAX_TOTAL / p[0].len());
}

#[test]
fn only_hep3_packets_whose_length_field_is_right_are_padded() {
    let mut v2 = packet(300);
    v2[0] = 2;
    let v = vec![v2.clone(), v2];
    assert_eq!(plan(&refs(&v), 1472), None);
    let mut bad = packet(300);
    bad[5] ^= 1;
    let v = vec![packet(300), bad];
    assert_eq!(plan(&refs(&v), 1472), None);
}

#[test]
fn a_run_starts_where_two_packets_qualify() {
    let v = vec![packet(400), packet(1300), packet(410), packet(405)];
    let p = refs(&v);
    assert!(!starts_run(&p, 1472));
    assert!(!starts_run(&p[1..], 1472));
    assert!(starts_run(&p[2..], 1472));
    assert!(!starts_run(&p[3..], 1472));
}

/// The segment as first written: the largest of the padded packets and the last, plus a chunk
/// header when a padded packet falls short of it by 1 to 5 bytes, scanning every packet.
fn segment_by_scanning(run: &[&[u8]]) -> usize {
    let padded = &run[..run.len() - 1];
    let want = run.iter().map(|p| p.len()).max().unwrap();
    if padded
        .iter()
        .any(|p| (1..CHUNK_HEADER).contains(&want.saturating_sub(p.len())))
    {
        want + CHUNK_HEADER
    } else {
        want
    }
}

/// Over many size sequences around the awkward shortfalls, the planned segment is the one a
/// scan of the whole run gives.
#[test]
fn planned_segments_match_a_scan_of_the_run() {
    let mut raised = 0;
    for seed in 0..2000u64 {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<Vec<u8>> = (0..12)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                packet(300 + (x >> 59) as usize * 2)
            })
            .collect();
        let p = refs(&v);
        let run = plan(&p, 1472).unwrap();
        let longest = p[..run.count].iter().map(|q| q.len()).max().unwrap();
        raised += usize::from(run.segment > longest);
        assert_eq!(
            run.segment,
            segment_by_scanning(&p[..run.count]),
            "seed {seed}"
        );
    }
    // The sizes differ by even numbers of bytes: many runs hit a 2- or 4-byte shortfall.
    assert!(raised > 100, "only {raised} runs needed a raised segment");
}
