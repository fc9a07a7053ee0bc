#!/usr/bin/env bash
# Tracing cost: OPTIONS throughput (rr50x10 = `sipbench rr -c 50 -w 10 -d $DUR`) with HEP
# tracing of every connection and SIP message off, on over UDP (bench/sipcore-bench-hep.cfg)
# and on over TCP (bench/sipcore-bench-hep-tcp.cfg), alternating for ROUNDS rounds so that
# drift on a shared machine hits all three alike. The HEP collector is `sipbench sink` (UDP,
# or --tcp) on 127.0.0.1:9060, i.e. on the same cores as client and server. Raw lines go to
# $OUT (default bench/results/trace-<UTC time>.txt), a table to stdout.
#
# Per run: rps, req_per_cpu_s (requests per server CPU-second, as sipbench reports it),
# server/client CPU-s in the measured window, and, for tracing runs, the CPU-s of the HEP
# sender thread (`hep-sink`, part of the server's) and of the sink process in the same window,
# req_per_total_cpu_s (requests per CPU-second of server + client + sink), the server's
# hep_stats (sent, dropped; cumulative since start, warm-up included) and the sink's packet
# count (cumulative too, so it should match hep_sent).
#
# Usage: bench/run-trace.sh
# Env:   DUR=10 ROUNDS=3 SKIP_BUILD=1 TARGET=/work/target-bench (CARGO_TARGET_DIR)
#        MODES="off udp tcp" (also: remote = UDP to the veth model of a collector on another
#        host, root only; udp-nogso, remote-nogso = the same with hep_udp_gso 0, one datagram
#        per packet; kam-off kam-udp kam-tcp kam-remote = Kamailio 5.6 siptrace, the same)
#        nic, nic-nogso = UDP to the port-less bridge model of a NIC (root only; nic_setup)
#        REMOTE_USO=off (on: the remote host's NIC model segments UDP in hardware; both models)
set -u
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-off udp tcp}
REMOTE_USO=${REMOTE_USO:-off}
WARMUP=1
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
results "trace-"
build
wait_quiet
header "DUR=$DUR ROUNDS=$ROUNDS" | tee "$OUT"

TCK=$(getconf CLK_TCK)
# ticks FILE...: utime + stime (fields 14, 15 of proc(5) stat) summed over the files.
ticks() {
    cat "$@" 2>/dev/null | sed 's/^.*) //' | awk '{ t += $12 + $13 } END { print t + 0 }'
}
# sender_stat PID: the stat file of the server's HEP sender thread (named hep-<dest>).
sender_stat() {
    grep -l '^[0-9]* (hep-' /proc/"$1"/task/*/stat 2>/dev/null | head -1
}
secs() { awk -v a="$1" -v b="$2" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }'; }

KCFG=$ROOT/bench/kamailio/kamailio-ws.cfg

# remote_setup: the veth model of a collector on another host (root only). hepv0 has
# 10.99.0.1/24; its peer hepv1 (10.99.0.2) is in network namespace hepcol, where an nftables
# netdev ingress rule drops every packet as it arrives: each datagram takes the whole UDP/IP
# send path and the veth driver's transmit (counted in hepv0's tx_packets), and the
# "collector" does as little as a NIC that takes the packet. UDP segmentation offload is off
# on hepv0, so a segmented send is cut in software before the driver, as for a NIC without
# USO (the conservative case; REMOTE_USO=on: a NIC with USO, which cuts it in hardware, so
# the segmented send reaches the driver whole). The neighbour is
# permanent (nothing answers ARP). Left in place; `ip link del hepv0; ip netns del hepcol`.
# (Until 2026-12-06 the peer was down: that model counted one drop per segmented send, 3,125
# for 200,000 datagrams sent 64 per call, so it never charged the cutting.)
remote_setup() {
    if [ -e /sys/class/net/hepv0 ] && ip netns exec hepcol true 2>/dev/null; then
        ethtool -K hepv0 tx-udp-segmentation "$REMOTE_USO" >/dev/null 2>&1
        return 0
    fi
    ip link del hepv0 2>/dev/null
    ip netns del hepcol 2>/dev/null
    ip netns add hepcol &&
        ip link add hepv0 type veth peer name hepv1 netns hepcol &&
        ip addr add 10.99.0.1/24 dev hepv0 &&
        ip link set hepv0 up &&
        ip -n hepcol addr add 10.99.0.2/24 dev hepv1 &&
        ip -n hepcol link set hepv1 up &&
        ip netns exec hepcol nft add table netdev col &&
        ip netns exec hepcol nft add chain netdev col in \
            '{ type filter hook ingress device hepv1 priority 0; policy drop; }' &&
        ip neigh replace 10.99.0.2 lladdr "$(ip netns exec hepcol cat /sys/class/net/hepv1/address)" \
            dev hepv0 nud permanent &&
        ethtool -K hepv0 tx-udp-segmentation "$REMOTE_USO" ||
        { log "cannot set up the veth pair (root, ip, nft and ethtool needed); skipping"; return 1; }
}

# nic_setup: the port-less bridge model of a NIC that sends to a collector on another host
# (root only). The veth model above also charges our CPU with the receiving host's work: the
# peer's receive path (netif_receive, the nftables chain that drops) runs in softirq on the
# sending thread. With one datagram per packet that was 39% of the HEP sender thread's samples
# (BENCHMARKS.md, "Tracing: the capture made cheaper"). Here 10.98.0.2 (a permanent neighbour)
# is routed to hepd0, a bridge without ports (this kernel has no dummy driver), whose transmit
# counts the packet, finds no port and frees it: each datagram takes the whole UDP/IP send
# path, software segmentation when tx-udp-segmentation is off (REMOTE_USO=off, the default),
# and a driver's transmit, counted in hepd0's tx_packets, and nothing of a receiver. A real
# NIC adds its DMA mapping, transmit completion and usually a qdisc per packet, which this
# model leaves out. Left in place; `ip link del hepd0`.
nic_setup() {
    if [ ! -e /sys/class/net/hepd0 ]; then
        ip link add hepd0 type bridge &&
            ip addr add 10.98.0.1/24 dev hepd0 &&
            ip link set hepd0 up &&
            ip neigh replace 10.98.0.2 lladdr 02:00:00:00:00:02 dev hepd0 nud permanent ||
            { log "cannot set up the bridge (root and ip needed); skipping"; return 1; }
    fi
    ethtool -K hepd0 tx-udp-segmentation "$REMOTE_USO" >/dev/null 2>&1 ||
        { log "ethtool cannot set tx-udp-segmentation on hepd0; skipping"; return 1; }
}

# niccfg CFG: a copy of sipcore config CFG sending HEP to the dummy-device model.
niccfg() {
    local c=${TMPDIR:-/tmp}/sipcore-trace-$(basename "$1" .cfg)-nic.cfg
    sed 's/10\.99\.0\.2/10.98.0.2/' "$1" >"$c"
    echo "$c"
}

# nogso CFG: a copy of sipcore config CFG with `hep_udp_gso 0` (one datagram per packet).
nogso() {
    local c=${TMPDIR:-/tmp}/sipcore-trace-$(basename "$1" .cfg)-nogso.cfg
    { cat "$1"; echo 'modparam("proto_hep", "hep_udp_gso", 0)'; } >"$c"
    echo "$c"
}


# one NAME CFG COLLECTOR: one run. CFG is a sipcore config, or "kamailio[ -A ...]" for
# Kamailio. COLLECTOR: "-" none, "veth" the remote model, else `sipbench sink` arguments.
one() {
    local name=$1 cfg=$2 coll=$3 line extra="" sk0=0 sk1=0 hs0=0 hs1=0 hs="" port=$SC_PORT tree=()
    local veth0=0
    case $coll in
    -) ;;
    veth) veth0=$(cat /sys/class/net/hepv0/statistics/tx_packets) ;;
    nic) veth0=$(cat /sys/class/net/hepd0/statistics/tx_packets) ;;
    *)
        # shellcheck disable=SC2086
        "$R/sipbench" sink --bind 127.0.0.1:9060 $coll >"$OUT.sink.log" 2>&1 &
        SK=$!
        sleep 0.3 ;;
    esac
    case $cfg in
    kamailio*)
        # shellcheck disable=SC2086
        "$KAM" -f "$KCFG" -DD -E -m 2048 -M 16 ${cfg#kamailio} >>"$OUT.kamailio.log" 2>&1 &
        port=$KAM_PORT tree=(--tree) ;;
    *) "$R/sipcore" -f "$cfg" 2>>"$OUT.sipcore.log" & ;;
    esac
    SP=$!
    wait_port $port || return
    local tmp
    tmp=$(mktemp)
    "$R/sipbench" -t 1 rr -c 50 -w 10 -d "$DUR" --warmup "$WARMUP" --addr "127.0.0.1:$port" \
        --pid "$SP" "${tree[@]}" >"$tmp" 2>&1 &
    local B=$!
    sleep "$WARMUP"
    if [ "$coll" != - ] && [ "$port" = "$SC_PORT" ]; then hs=$(sender_stat "$SP"); fi
    [ -n "$SK" ] && sk0=$(ticks /proc/"$SK"/stat)
    hs0=$(ticks "$hs")
    wait "$B"
    [ -n "$SK" ] && sk1=$(ticks /proc/"$SK"/stat)
    hs1=$(ticks "$hs")
    line=$(grep '^RESULT' "$tmp")
    rm -f "$tmp"
    if [ "$coll" != - ]; then
        extra=" sender_cpu_s=$(secs "$hs0" "$hs1") sink_cpu_s=$(secs "$sk0" "$sk1")"
        if [ "$port" = "$SC_PORT" ]; then extra+=$(hep_stats "$cfg"); fi
        if [ "$coll" = veth ]; then
            extra+=" sink_packets=$(($(cat /sys/class/net/hepv0/statistics/tx_packets) - veth0))"
        elif [ "$coll" = nic ]; then
            extra+=" sink_packets=$(($(cat /sys/class/net/hepd0/statistics/tx_packets) - veth0))"
        else
            sleep 1.1 # the sink prints its counters once a second
            extra+=" sink_packets=$(tail -1 "$OUT.sink.log" | sed -n 's/^packets=\([0-9]*\).*/\1/p')"
        fi
    fi
    if ! kill -0 "$SP" 2>/dev/null; then extra+=" SERVER_DIED=1"; fi
    echo "tracing=$name load=$(cut -d' ' -f1 /proc/loadavg) ${line#RESULT }$extra" | tee -a "$OUT"
    stop
}

for r in $(seq 1 "$ROUNDS"); do
    log "round $r/$ROUNDS"
    for m in $MODES; do
        case $m in
        off) one off "$ROOT/bench/sipcore-bench.cfg" - ;;
        udp) one udp "$ROOT/bench/sipcore-bench-hep.cfg" " " ;;
        tcp) one tcp "$ROOT/bench/sipcore-bench-hep-tcp.cfg" "--tcp" ;;
        remote) remote_setup && one remote "$ROOT/bench/sipcore-bench-hep-remote.cfg" veth ;;
        udp-nogso) one udp-nogso "$(nogso "$ROOT/bench/sipcore-bench-hep.cfg")" " " ;;
        remote-nogso) remote_setup && one remote-nogso "$(nogso "$ROOT/bench/sipcore-bench-hep-remote.cfg")" veth ;;
        nic) nic_setup && one nic "$(niccfg "$ROOT/bench/sipcore-bench-hep-remote.cfg")" nic ;;
        nic-nogso) nic_setup && one nic-nogso "$(nogso "$(niccfg "$ROOT/bench/sipcore-bench-hep-remote.cfg")")" nic ;;
        kam-off) one kam-off kamailio - ;;
        kam-remote) remote_setup && one kam-remote "kamailio -A WITH_HEP -A HEP_REMOTE" veth ;;
        kam-udp) one kam-udp "kamailio -A WITH_HEP" "" ;;
        kam-tcp) one kam-tcp "kamailio -A WITH_HEP -A HEP_TCP" "--tcp" ;;
        esac
    done
done
echo "# loadavg after: $(cat /proc/loadavg)" >>"$OUT"

echo
echo "results: $OUT"
printf '%-7s %8s %9s %9s %6s %6s %6s %6s %10s %10s %10s %9s\n' mode req/s req/cpu_s \
    req/totcpu srv_s cli_s snd_s sink_s hep_sent hep_drop sink_pkts vs_off
mean_off() { # mode
    grep "^tracing=$1 " "$OUT" | while read -r l; do get "$l" rps; done |
        awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n }'
}
OFF=$(mean_off off)
KOFF=$(mean_off kam-off)
grep '^tracing=' "$OUT" | while read -r l; do
    rps=$(get "$l" rps) srv=$(get "$l" server_cpu_s) cli=$(get "$l" client_cpu_s)
    snk=$(get "$l" sink_cpu_s) req=$(get "$l" requests)
    tot=$(awk -v r="$req" -v a="$srv" -v b="$cli" -v c="${snk:-0}" \
        'BEGIN { printf "%.0f", r / (a + b + c) }')
    o=$OFF
    case $l in tracing=kam-*) o=$KOFF ;; esac
    vs=$(awk -v r="$rps" -v o="${o:-0}" 'BEGIN { if (o > 0) printf "%+.1f%%", 100 * (r / o - 1) }')
    printf '%-7s %8s %9s %9s %6s %6s %6s %6s %10s %10s %10s %9s\n' "$(get "$l" tracing)" "$rps" \
        "$(get "$l" req_per_cpu_s)" "$tot" "$srv" "$cli" "$(get "$l" sender_cpu_s)" "$snk" \
        "$(get "$l" hep_sent)" "$(get "$l" hep_dropped)" "$(get "$l" sink_packets)" "$vs"
done
# Per mode: the median over rounds of rps, and of rps / rps of the same round's "off" run
# ("kam-off" for the kam-* modes; pairing within a round cancels slow drift of the machine).
echo
printf '%-7s %8s %12s\n' mode med_rps med_vs_off
grep '^tracing=' "$OUT" | awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    { srv = f["tracing"] ~ /^kam-/ ? "kam" : "sc" }
    f["tracing"] ~ /off$/ { off[srv] = f["rps"] }
    { rps[f["tracing"]] = rps[f["tracing"]] " " f["rps"];
      if (off[srv] > 0) ratio[f["tracing"]] = ratio[f["tracing"]] " " f["rps"] / off[srv] }
    function median(list,    a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END { for (m in rps) printf "%-7s %8.0f %+11.1f%%\n", m, median(rps[m]), 100 * (median(ratio[m]) - 1) }'

