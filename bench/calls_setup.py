#!/usr/bin/env python3
"""Call setup times from a pcap of the SIPp UAC's port (bench/run-calls.sh).

Reads a pcap (tcpdump -w, Linux loopback or cooked capture) holding the UAC's INVITEs and the
200 responses it received, and prints `n=N p50_us=.. p99_us=.. p999_us=.. max_us=..`: for each
Call-ID, the time from the first INVITE the UAC sent to the first 200 for that INVITE it got
(CSeq method INVITE). SIPp's own -trace_rtt has a 4 ms clock here, too coarse for loopback.

With UAS_PORT (a capture of both SIPp ports, bench/run-calls.sh CAPTURE=hops) it also prints
where the setup time went, p50 and p99 of each hop (the capture's clock is the sender's, so a
proxy's hop is from its peer's send to its own: the wake-up, the receive and the work):
  inv    the UAC's INVITE to the proxy's INVITE to the UAS
  uas    the proxy's INVITE to the UAS's 180
  r180   the UAS's 180 to the proxy's 180 to the UAC
  r200   the UAS's 200 to the proxy's 200 to the UAC
  t100   the UAC's INVITE to the proxy's 100 Trying (when there is one)
Usage: calls_setup.py FILE.pcap UAC_PORT [UAS_PORT]
"""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            ts = sec + frac / (1e9 if nano else 1e6)
            off = {1: 14, 113: 16, 0: 4, 276: 20}.get(linktype)
            if off is None:
                sys.exit(f"unsupported linktype {linktype}")
            ip = data[off:]
            if not ip or ip[0] >> 4 != 4:
                continue
            ihl = (ip[0] & 15) * 4
            if ip[9] != 17:
                continue
            sport, dport = struct.unpack(">HH", ip[ihl : ihl + 4])
            yield ts, sport, dport, ip[ihl + 8 :]


def header(payload, name):
    for line in payload.split(b"\r\n"):
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def q(v, p):
    """Nearest-rank percentile P of the sorted seconds V, in microseconds."""
    return v[min(len(v) - 1, max(0, int(p / 100 * len(v) + 0.999999) - 1))] * 1e6


# (name, event it starts at, event it ends at); an event is (direction, start line)
HOPS = (
    ("inv", "uac_invite", "uas_invite"),
    ("uas", "uas_invite", "uas_180"),
    ("r180", "uas_180", "uac_180"),
    ("r200", "uas_200", "uac_200"),
    ("t100", "uac_invite", "uac_100"),
)


def event(sport, dport, uac, uas, p):
    """Which setup event the datagram is: its first time per call is kept."""
    if p.startswith(b"INVITE "):
        return {uac: "uac_invite"}.get(sport) or {uas: "uas_invite"}.get(dport)
    if p.startswith(b"SIP/2.0 "):
        code = p[8:11]
        cseq = header(p, b"cseq") or b""
        if not cseq.endswith(b"INVITE"):
            return None
        if dport == uac and code in (b"100", b"180", b"200"):
            return "uac_" + code.decode()
        if sport == uas and code in (b"180", b"200"):
            return "uas_" + code.decode()
    return None


def main():
    path, uac = sys.argv[1], int(sys.argv[2])
    uas = int(sys.argv[3]) if len(sys.argv) > 3 else None
    calls = {}
    for ts, sport, dport, p in packets(path):
        cid = header(p, b"call-id") or header(p, b"i")
        if cid is None:
            continue
        e = event(sport, dport, uac, uas, p)
        if e is not None:
            calls.setdefault(cid, {}).setdefault(e, ts)
    setup = sorted(c["uac_200"] - c["uac_invite"] for c in calls.values()
                   if "uac_invite" in c and "uac_200" in c)
    if not setup:
        print("n=0")
        return
    invites = sum(1 for c in calls.values() if "uac_invite" in c)
    out = (f"n={len(setup)} invites={invites} p50_us={q(setup, 50):.0f} p99_us={q(setup, 99):.0f} "
           f"p999_us={q(setup, 99.9):.0f} max_us={setup[-1] * 1e6:.0f}")
    if uas is not None:
        for name, a, b in HOPS:
            v = sorted(c[b] - c[a] for c in calls.values() if a in c and b in c)
            if v:
                out += f" {name}_p50_us={q(v, 50):.0f} {name}_p99_us={q(v, 99):.0f}"
    print(out)


main()
