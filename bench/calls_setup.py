#!/usr/bin/env python3
"""Call setup times from a pcap of the SIPp UAC's port (bench/run-calls.sh).

Reads a pcap (tcpdump -w, Linux loopback or cooked capture) holding the UAC's INVITEs and the
200 responses it received, and prints `n=N p50_us=.. p99_us=.. p999_us=.. max_us=..`: for each
Call-ID, the time from the first INVITE the UAC sent to the first 200 for that INVITE it got
(CSeq method INVITE). SIPp's own -trace_rtt has a 4 ms clock here, too coarse for loopback.
Usage: calls_setup.py FILE.pcap UAC_PORT
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


def main():
    path, uac = sys.argv[1], int(sys.argv[2])
    sent, setup = {}, {}
    for ts, sport, dport, p in packets(path):
        cid = header(p, b"call-id") or header(p, b"i")
        if cid is None:
            continue
        if sport == uac and p.startswith(b"INVITE "):
            sent.setdefault(cid, ts)
        elif dport == uac and p.startswith(b"SIP/2.0 200"):
            cseq = header(p, b"cseq") or b""
            if cseq.endswith(b"INVITE") and cid in sent and cid not in setup:
                setup[cid] = ts - sent[cid]
    v = sorted(setup.values())
    if not v:
        print("n=0")
        return
    def q(p):
        return v[min(len(v) - 1, max(0, int(p / 100 * len(v) + 0.999999) - 1))] * 1e6
    print(f"n={len(v)} invites={len(sent)} p50_us={q(50):.0f} p99_us={q(99):.0f} "
          f"p999_us={q(99.9):.0f} max_us={v[-1] * 1e6:.0f}")


main()
