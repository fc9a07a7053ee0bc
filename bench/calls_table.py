#!/usr/bin/env python3
"""Markdown tables from bench/run-calls.sh results files (the `server=...` lines).
Usage: calls_table.py FILE..."""
import sys

calls, ring = [], []
for path in sys.argv[1:]:
    for line in open(path):
        if not line.startswith("server="):
            continue
        kv = {}
        for tok in line.split():
            k, _, v = tok.partition("=")
            kv[k] = v
        (ring if kv.get("mode") == "ring" else calls if "rate" in kv else []).append(kv)

def mb(kb):
    return f"{int(kb) / 1024:.0f}"

if calls:
    print("| server | offered / achieved calls/s | failed | server CPU s | calls per server CPU-s"
          " | setup p50 / p99 / p99.9 (µs) | RSS MB before → after | PSS MB before → after"
          " | SIPp UAC + UAS CPU s | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in calls:
        if "START_FAILED" in r:
            print(f"| {r['server']} (round {r['round']}) | did not start |")
            continue
        print(f"| {r['server']} (r{r['round']}) | {r['offered_cps']} / {float(r['achieved_cps']):.0f}"
              f" | {r['failed']} | {r['server_cpu_s']} | {int(r['calls_per_cpu_s']):,}"
              f" | {r['setup_p50_us']} / {r['setup_p99_us']} / {r['setup_p999_us']}"
              f" | {mb(r['rss_kb_before'])} → {mb(r['rss_kb_after'])}"
              f" | {mb(r['pss_kb_before'])} → {mb(r['pss_kb_after'])}"
              f" | {float(r['uac_cpu_s']) + float(r['uas_cpu_s']):.2f} | {r['load']} |")
if ring:
    print()
    print("| server | calls held ringing | tm:inuse_transactions held | PSS MB before → held → 8 s after the calls"
          " | RSS bytes per call held | PSS bytes per call held | failed | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in ring:
        print(f"| {r['server']} | {r['held']} | {r['inuse_held']} | {mb(r['pss_kb_before'])} → "
              f"{mb(r['pss_kb_held'])} → {mb(r['pss_kb_after'])} | {int(r['rss_bytes_per_call']):,}"
              f" | {int(r['pss_bytes_per_call']):,} | {r['failed']} | {r['load']} |")
