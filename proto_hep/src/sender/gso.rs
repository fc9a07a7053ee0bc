//! UDP generic segmentation offload for HEPv3 (Linux `UDP_SEGMENT`, kernel 4.18+): pure
//! planning and padding, no I/O.
//!
//! One `sendmsg` with a `UDP_SEGMENT` control message hands the kernel one buffer that it
//! cuts into datagrams of `gso_size` bytes each (the last may be shorter), so the UDP/IP
//! send path runs once per run of packets instead of once per packet; a NIC with UDP
//! segmentation offload does the cutting itself. HEP packets differ in size, so every packet
//! of a run but the last is padded to the run's segment size with one extra HEPv3 chunk
//! ([`PAD_VENDOR`], [`PAD_TYPE`]) and its total length field (HEPv3 header bytes 4..5) grown
//! to match. HEPv3 receivers skip chunks they do not know by their length field (hep-js,
//! heplify-server, tshark's hep.lua); Kamailio's sipcapture and sngrep skip every chunk of a
//! vendor other than 0. HEPv2 has no chunks, so it is never padded (nor segmented).

/// Vendor id of the padding chunk: not 0 (generic), so Kamailio and sngrep skip it without
/// looking at its type.
pub const PAD_VENDOR: u16 = 0xffff;
/// Type id of the padding chunk: above 0x00ff, so decoders that switch on the type id alone
/// (hep-js, heplify-server) never mistake it for a generic chunk.
pub const PAD_TYPE: u16 = 0xffff;
/// Size of a chunk header (vendor, type, length): the smallest padding there is.
pub const CHUNK_HEADER: usize = 6;
/// The kernel's limit of segments per call (`UDP_MAX_SEGMENTS`, 64 before Linux 6.x raised it
/// to 128).
pub const MAX_SEGMENTS: usize = 64;
/// Largest buffer per call: a UDP datagram's payload limit over IPv4 (65535 - 20 - 8).
pub const MAX_TOTAL: usize = 65_507;

/// One `sendmsg` worth of packets: the first `count` packets of the slice given to [`plan`],
/// cut into segments of `segment` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Packets in the run (at least 2).
    pub count: usize,
    /// The segment size: the size of every padded packet of the run; the last one is sent
    /// as it is (at most this long).
    pub segment: usize,
}

/// Whether `p` looks like a HEPv3 packet whose length field is its length (what
/// [`pad_into`] rewrites).
fn is_hep3(p: &[u8]) -> bool {
    p.len() >= CHUNK_HEADER
        && p.starts_with(b"HEP3")
        && p.get(4..6)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            == Some(p.len())
}

/// Plans the run that starts `packets`: as many packets as fit in one call (at most
/// [`MAX_SEGMENTS`], [`MAX_TOTAL`] bytes in all), each at most `max_segment` bytes long,
/// HEPv3, and within a size band of the first packet (from half to 1.25 times its size, so
/// that padding costs at most about a quarter of a packet). The segment size is the largest
/// packet but the last, raised by [`CHUNK_HEADER`] when a packet would be short of it by fewer
/// bytes than a chunk header (padding is all or at least a chunk). `None` when fewer than two
/// packets qualify: send the first one by itself.
pub fn plan(packets: &[&[u8]], max_segment: usize) -> Option<Run> {
    let first = packets.first()?;
    if !is_hep3(first) || first.len() > max_segment {
        return None;
    }
    let lo = first.len() / 2;
    let hi = (first.len() + first.len() / 4).min(max_segment);
    // Longest packet among all but the last of the run, and those near it.
    let mut seg = first.len();
    let mut near = Near::default();
    near.add(seg, seg);
    let mut best: Option<Run> = None;
    for (i, p) in packets.iter().enumerate().skip(1).take(MAX_SEGMENTS - 1) {
        if !is_hep3(p) || p.len() < lo || p.len() > hi {
            break;
        }
        // `p` is the last of the run (not padded): the earlier ones pad to `seg`, which
        // must be at least `p.len()` (the last segment cannot be longer than the others).
        let want = seg.max(p.len());
        let s = if near.awkward(want) {
            want + CHUNK_HEADER
        } else {
            want
        };
        if s > max_segment || s * i + p.len() > MAX_TOTAL {
            break;
        }
        best = Some(Run {
            count: i + 1,
            segment: s,
        });
        seg = want;
        near.add(p.len(), seg);
    }
    best
}

/// The distinct lengths of a run's padded packets that are within `CHUNK_HEADER - 1` bytes
/// of the longest: the only ones a segment at least that long can exceed by 1 to 5 bytes
/// (too few for a padding chunk). At most `CHUNK_HEADER` of them, so planning a run costs
/// O(1) per packet.
#[derive(Default)]
struct Near {
    lens: [usize; CHUNK_HEADER],
    n: usize,
}

impl Near {
    /// Notes a padded packet of `len` bytes, `longest` being the longest so far (with it).
    fn add(&mut self, len: usize, longest: usize) {
        let floor = longest.saturating_sub(CHUNK_HEADER - 1);
        let mut kept = 0;
        for i in 0..self.n {
            let l = self.lens[i];
            if l >= floor {
                self.lens[kept] = l;
                kept += 1;
            }
        }
        self.n = kept;
        if len >= floor && !self.lens[..self.n].contains(&len) && self.n < CHUNK_HEADER {
            self.lens[self.n] = len;
            self.n += 1;
        }
    }

    /// Whether padding to `want` (at least the longest) leaves one of them short by 1 to 5.
    fn awkward(&self, want: usize) -> bool {
        self.lens[..self.n]
            .iter()
            .any(|&l| (1..CHUNK_HEADER).contains(&want.saturating_sub(l)))
    }
}

/// Whether a run of at least two packets starts at `packets[0]` (what [`plan`] would find,
/// looking at two packets only).
pub fn starts_run(packets: &[&[u8]], max_segment: usize) -> bool {
    plan(packets.get(..2).unwrap_or(packets), max_segment).is_some()
}

/// Appends `p` (a HEPv3 packet) to `out` padded to `segment` bytes: its length field set to
/// `segment` and, when it is shorter, one padding chunk of zeros after its own chunks.
/// `segment - p.len()` must be 0 or at least [`CHUNK_HEADER`], and at most 65535 - 6.
pub fn pad_into(out: &mut Vec<u8>, p: &[u8], segment: usize) {
    let pad = segment.saturating_sub(p.len());
    debug_assert!(pad == 0 || pad >= CHUNK_HEADER);
    let start = out.len();
    out.extend_from_slice(p);
    if pad < CHUNK_HEADER {
        return;
    }
    let total = u16::try_from(segment).unwrap_or(u16::MAX);
    if let Some(len) = out.get_mut(start + 4..start + 6) {
        len.copy_from_slice(&total.to_be_bytes());
    }
    let chunk = u16::try_from(pad).unwrap_or(u16::MAX);
    out.extend_from_slice(&PAD_VENDOR.to_be_bytes());
    out.extend_from_slice(&PAD_TYPE.to_be_bytes());
    out.extend_from_slice(&chunk.to_be_bytes());
    out.resize(start + segment, 0);
}

/// Builds the buffer of a planned run: every packet but the last padded to `run.segment`,
/// the last as it is. (One contiguous copy: measured cheaper than handing the kernel the
/// packets and the padding as separate `iovec`s, four or five per packet.)
pub fn build(out: &mut Vec<u8>, packets: &[&[u8]], run: Run) {
    out.clear();
    let n = run.count.min(packets.len());
    for (i, p) in packets.iter().take(n).enumerate() {
        if i + 1 == n {
            out.extend_from_slice(p);
        } else {
            pad_into(out, p, run.segment);
        }
    }
}

#[cfg(test)]
#[path = "gso_tests.rs"]
mod tests;
