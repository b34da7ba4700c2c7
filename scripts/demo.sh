#!/usr/bin/env bash
# `make demo`: a local lab, a global mirror, the capture service, ~10 s of real traffic between
# pods, then the mirror's status, `mirrorctl report` of the records (terminal and HTML), and a service left
# running for /metrics. Re-runnable: lab up is idempotent and an earlier demo service is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=${DEMO_NAME:-demo}
LISTEN=${DEMO_LISTEN:-127.0.0.1:10097}
OUT=${DEMO_OUT:-/var/tmp/mirrorscope-demo}
TRAFFIC_S=${DEMO_SECONDS:-10}
PY=.venv/bin/python
CTL=.venv/bin/mirrorctl
RUN_DIR=/run/mirrorscope/lab-$NAME
PIDFILE=$RUN_DIR/capture.pid
RECORDS=$OUT/records

say() { printf '\n==> %s\n' "$*"; }
# The service says "capturing on" once its compiled kernels are loaded: ~0.3 s from numba's cache,
# 20-30 s the first time after an install, when it compiles them (packets wait in its ring).
wait_capturing() {
    for _ in $(seq 1200); do grep -q '^capturing on' "$OUT/capture.log" && return; sleep 0.1; done
}

# A pid from our pidfile is only ours if it still runs `capture run` (pids get reused).
stop_service() {
    local pid
    [[ -f $PIDFILE ]] || return 0
    pid=$(cat "$PIDFILE")
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'capture run'; then
        kill -TERM "$pid"
        for _ in $(seq 100); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
    fi
    rm -f "$PIDFILE"
}

say "lab up --name $NAME (4 pods)"
$CTL lab up --name "$NAME" --pods 4
eval "$($PY - "$RUN_DIR/lab.json" <<'EOF'
import json, shlex, sys
s = json.load(open(sys.argv[1]))
svc = {x["kind"]: x for x in s["services"]}
byl = {f'{p["namespace"]}/{p["name"]}': p for p in s["pods"]}
client = next(p for p in s["pods"] if f'{p["namespace"]}/{p["name"]}' not in {x["pod"] for x in s["services"]})
out = {
    "OVSDB": s["ovsdb"], "NODE_NS": s["node_netns"], "CLIENT_NS": client["netns"],
    "HTTP_IP": byl[svc["http"]["pod"]]["ipv4"], "HTTP_IP6": byl[svc["http"]["pod"]]["ipv6"],
    "HTTP_PORT": svc["http"]["port"], "DNS_IP": byl[svc["dns"]["pod"]]["ipv4"],
    "IPERF_IP": byl[svc["iperf3"]["pod"]]["ipv4"], "IPERF_PORT": svc["iperf3"]["port"],
    "HTTP_NAME": f'{byl[svc["http"]["pod"]]["name"]}.{byl[svc["http"]["pod"]]["namespace"]}.svc.cluster.local',
}
for k, v in out.items():
    print(f"{k}={shlex.quote(str(v))}")
EOF
)"
export MIRRORSCOPE_OVSDB=$OVSDB MIRRORSCOPE_NETNS=$NODE_NS

say "mirrorctl enable --global"
$CTL enable --global

stop_service
mkdir -p "$RECORDS"
rm -f "$RECORDS"/*.jsonl "$RECORDS"/*.part

say "mirrorctl capture run --iface mirror0 --records $RECORDS --listen $LISTEN"
$CTL capture run --iface mirror0 --records "$RECORDS" --listen "$LISTEN" --pidfile "$PIDFILE" \
    >"$OUT/capture.log" 2>&1 &
wait_capturing
grep -q '^capturing on' "$OUT/capture.log" || { cat "$OUT/capture.log"; exit 1; }
cat "$OUT/capture.log"

in_client() { ip netns exec "$CLIENT_NS" "$@"; }
say "real traffic for ${TRAFFIC_S}s: curl keep-alive (v4, v6), dig (incl. NXDOMAIN), ping, iperf3"
in_client iperf3 -c "$IPERF_IP" -p "$IPERF_PORT" -t 2 -b 50M >/dev/null
end=$((SECONDS + TRAFFIC_S))
while ((SECONDS < end)); do
    in_client curl -s -o /dev/null -o /dev/null "http://$HTTP_IP:$HTTP_PORT/" "http://$HTTP_IP:$HTTP_PORT/"
    in_client curl -s -g -o /dev/null "http://[$HTTP_IP6]:$HTTP_PORT/"
    in_client dig +short +time=1 +tries=1 "@$DNS_IP" "$HTTP_NAME" A >/dev/null
    in_client dig +short +time=1 +tries=1 "@$DNS_IP" "no-such-pod.nowhere.svc.cluster.local" A >/dev/null
    in_client ping -c 2 -i 0.2 -q "$IPERF_IP" >/dev/null
    in_client curl -s -o /dev/null "http://$HTTP_IP:81/" || true  # refused: a REJ flow
    sleep 0.5
done

say "a scrape of http://$LISTEN/metrics (a few lines)"
curl -s "http://$LISTEN/metrics" \
    | grep -E '^mirrorscope_(pod_bytes_total|capture_received_packets_total|capture_kernel_dropped_packets_total|capture_duplicate_packets_total|flows_active)' \
    | head -n 12 || true

say "SIGTERM to the service: every active flow is flushed as a record"
stop_service
tail -n 1 "$OUT/capture.log"

say "mirrorctl status"
$CTL status

say "mirrorctl report --records $RECORDS --since 1h --by pair"
$CTL report --records "$RECORDS" --since 1h --by pair --top 15
$CTL report --records "$RECORDS" --since 1h --format html -o "$OUT/report.html"

say "leaving the capture service running for /metrics"
$CTL capture run --iface mirror0 --records "$RECORDS" --listen "$LISTEN" --pidfile "$PIDFILE" \
    >"$OUT/capture.log" 2>&1 &
wait_capturing
cat <<EOF

  page:      http://$LISTEN/     (top pods live, each pod's report and last minutes of packets)
  flows:     curl 'http://$LISTEN/api/v1/flows?since=1h'   report: http://$LISTEN/report?since=1h
             mirrorctl report --server http://$LISTEN --since 1h
  metrics:   curl http://$LISTEN/metrics     (also /healthz, /readyz)
  records:   $RECORDS (closed files *.parquet; the one being written ends in .jsonl.part)
  report:    file://$OUT/report.html   (mirrorctl report --records $RECORDS --since 1h)
  log:       $OUT/capture.log
  stop it:   kill \$(cat $PIDFILE)
  lab:       export MIRRORSCOPE_OVSDB=$OVSDB MIRRORSCOPE_NETNS=$NODE_NS
  tear down: $CTL lab down --name $NAME   (the service notices its namespace is gone and exits)
EOF

# --- pcap store (issue 11): the last minute of one pod's packets, opened with tshark -----------
PCAP_DIR=$OUT/pcap
HTTP_POD=$($PY -c 'import json, sys
s = json.load(open(sys.argv[1]))
print(next(x["pod"] for x in s["services"] if x["kind"] == "http"))' "$RUN_DIR/lab.json")
say "the service again, now with its pcap store: --pcap-dir $PCAP_DIR"
stop_service
$CTL capture run --iface mirror0 --records "$RECORDS" --listen "$LISTEN" --pidfile "$PIDFILE" \
    --pcap-dir "$PCAP_DIR" --pcap-quota 256M --pcap-min-free 64M >"$OUT/capture.log" 2>&1 &
wait_capturing
for _ in 1 2 3; do
    in_client curl -s -o /dev/null "http://$HTTP_IP:$HTTP_PORT/"
    in_client ping -c 1 -q "$HTTP_IP" >/dev/null
done
say "mirrorctl pcap get --pod $HTTP_POD --since 1m -o $OUT/pod.pcapng"
$CTL pcap get --server "http://$LISTEN" --pod "$HTTP_POD" --since 1m -o "$OUT/pod.pcapng"
say "tshark -r $OUT/pod.pcapng (its first packets; the comments name the pods)"
tshark -r "$OUT/pod.pcapng" -n -c 12 2>/dev/null || true
tshark -r "$OUT/pod.pcapng" -n -c 1 -T fields -e frame.comment 2>/dev/null || true
cat <<EOF

  pcap:      $CTL pcap ls --server http://$LISTEN
             $CTL pcap follow --server http://$LISTEN --pod $HTTP_POD -w - | wireshark -k -i -
EOF
