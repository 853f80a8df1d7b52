#!/usr/bin/env bash
# Växel benchmarks: the release build over loopback, inside a private network
# namespace, each figure beside a reference measured in the same run.
#
#   bench/run.sh media    concurrent calls playing prompts: pacing (kernel
#                         timestamps), gaps, CPU per packet, DTMF-to-action
#                         latency, memory per call; reference: a bare pacer
#   bench/run.sh setup    call set-ups per second, stepped until failures or
#                         retransmissions pass 1 %; references: SIPp against SIPp,
#                         and SIPp through Kamailio (stateful proxy) to SIPp
#   bench/run.sh soak     RSS over a 10-minute run with call churn
#   bench/run.sh flows    the shipped flow under FLOW_CALLS (200) concurrent
#                         callers, half of them known customers: customer
#                         lookup latency (p50/p99) and time from answer to the
#                         human announcement, with SQLite and with PostgreSQL
#   bench/run.sh bridge   bridged calls (BRIDGE_CALLS=1000): loss, delay p99
#                         through the relay, CPU per forwarded packet, memory
#                         per call, key-0-to-ring p99; reference: a bare reflector
#   bench/run.sh register REGISTER with digest per second; reference: Kamailio
#   bench/run.sh http     the bridged-call load (HTTP_CALLS=500) measured three
#                         times: alone; with 200 wallboards on the event stream
#                         and an agent's status changing every 200 ms (every
#                         wallboard is sent events); and with API_RATE (200)
#                         GET /api/v1/queues a second on top: the engine's CPU
#                         per packet and RTP delay p99 side by side, and the
#                         API's p50/p99
#   bench/run.sh all      media + setup
#
# media, setup and soak run the read-back test flow (tests/flows/readback.toml)
# with a fresh SQLite store, so each call also does a lookup and writes a record.
#
# Environment: CALLS="500 1000 2000" (media), MEASURE=20 (seconds per media
# measurement), RATES="500 1000 ..." (setup), STEP=6 (seconds per rate step),
# SOAK_MIN=10. Results go to bench/results/DATE/ and are summarised on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

if [ -z "${VAXEL_BENCH_NS:-}" ]; then
  command -v sipp >/dev/null || { apt-get update -qq && apt-get install -y -qq sip-tester; }
  if [ "$what" = setup ] || [ "$what" = all ] || [ "$what" = register ]; then
    command -v kamailio >/dev/null || apt-get install -y -qq kamailio
  fi
  if [ "$what" = flows ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt-get install -y -qq postgresql
  fi
  cargo build --release --bins >/dev/null
  exec unshare -n env VAXEL_BENCH_NS=1 "$0" "$@"
fi

ip link set lo up
ulimit -n "$(ulimit -Hn)"
# VAXEL_BIN compares another build (e.g. the previous commit's); BENCH_CONFIG=none
# runs it without bench/vaxel.toml (a build that does not know its keys).
V=${VAXEL_BIN:-target/release/vaxel}
BENCH_CONFIG=${BENCH_CONFIG:-bench/vaxel.toml}
cfg_args=()
[ "$BENCH_CONFIG" = none ] || cfg_args=(--config "$BENCH_CONFIG")
L=target/release/vaxel-rtpload
CALLS=${CALLS:-"500 1000 2000"}
MEASURE=${MEASURE:-20}
RATES=${RATES:-"500 1000 1500 2000 2500 3000 3500 4000 4500 5000"}
STEP=${STEP:-6}
out=bench/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out" "$out/readback"
# media, setup and soak run the read-back test flow alone.
cp tests/flows/readback.toml "$out/readback/"
echo "results in $out (machine: $(nproc) cores, $(uname -r))"

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
val() { sed -n "s/^$1=//p" "$2" | head -1; }

start_vaxel() { # logfile, extra args...
  local log=$1; shift
  local db=${DATA_URL:-sqlite://$out/vaxel-$RANDOM.db}
  $V serve --sip-listen 127.0.0.1:5060 --rtp-ports 20000-59999 --max-calls 15000 \
    --flows "${FLOWS:-$out/readback}" --data "$db" --data-dir "$out/data" --drain-timeout 5 "${cfg_args[@]}" ${VAXEL_ARGS:-} "$@" >"$log" 2>&1 &
  VP=$!
  for _ in $(seq 100); do grep -q "listening for SIP" "$log" && return 0; sleep 0.1; done
  echo "vaxel did not start: $(tail -3 "$log")"; exit 1
}

stop() { kill "$@" 2>/dev/null || true; wait "$@" 2>/dev/null || true; }

media() {
  echo
  echo "== concurrent calls playing prompts (measure ${MEASURE} s each)"
  printf '%-7s %-9s %-16s %-16s %-8s %-14s %-14s %-12s\n' calls source "dev p50/p99 ms" "ref p50/p99 ms" gaps "cpu us/pkt" "ref us/pkt" "dtmf p50/p99"
  for n in $CALLS; do
    start_vaxel "$out/vaxel-media-$n.log" --rtp-timeout 3600
    local rss0; rss0=$(rss_kib "$VP")
    local warm=$(( n / 200 + 5 ))
    local hold=$(( (warm + MEASURE + 15) * 1000 ))
    $L recv --pid "$VP" --streams "$n" --warmup "$warm" --duration "$MEASURE" --dtmf-probes 50 >"$out/media-$n.txt" &
    local rp=$!
    sipp 127.0.0.1:5060 -sf bench/sipp/call.xml -i 127.0.0.1 -p 5070 -r 200 -l "$n" -m "$n" -d "$hold" \
      -buff_size 4194304 -nostdin -timeout $(( hold / 1000 + 30 )) >/dev/null 2>&1 &
    local sp=$!
    wait "$rp" || true
    stop "$sp" "$VP"
    # Reference: the bare pacer, same number of streams, same receiver.
    $L recv --streams "$n" --warmup 3 --duration "$MEASURE" >"$out/pacer-$n.txt" &
    rp=$!
    $L pace --streams "$n" --to 127.0.0.1:40000 --duration $(( MEASURE + 5 )) >"$out/pacer-send-$n.txt"
    wait "$rp" || true
    local f="$out/media-$n.txt" r="$out/pacer-$n.txt"
    local rss; rss=$(val target_rss_kib "$f")
    local per_call=$(( (rss - rss0) * 1024 / n ))
    printf '%-7s %-9s %-16s %-16s %-8s %-14s %-14s %-12s\n' "$n" "$(val streams "$f")" \
      "$(val spacing_dev_p50_ms "$f")/$(val spacing_dev_p99_ms "$f")" \
      "$(val spacing_dev_p50_ms "$r")/$(val spacing_dev_p99_ms "$r")" \
      "$(val gaps "$f")" "$(val target_cpu_us_per_packet "$f")" \
      "$(val pacer_cpu_us_per_packet "$out/pacer-send-$n.txt")" \
      "$(val dtmf_p50_ms "$f")/$(val dtmf_p99_ms "$f")"
    echo "        memory: RSS $(( rss0 / 1024 )) MiB idle -> $(( rss / 1024 )) MiB with $n calls = $(( per_call / 1024 )) KiB per call"
  done
}

# One SIPp load step: prints "ok|fail achieved_cps failed% retrans%". With
# SIPP_PROCS=N the rate is split over N SIPp processes (one SIPp tops out near
# 8,000 calls/s here), and their counts are added up.
step() { # target_port rate label
  local port=$1 rate=$2 label=$3
  local procs=${SIPP_PROCS:-1}
  local each=$(( rate / procs ))
  local n=$(( each * STEP ))
  local pids=() files=()
  for i in $(seq "$procs"); do
    local stf="$out/setup-$label-$rate-$i.csv"
    timeout $(( STEP + 40 )) ${SIPP_NICE:+nice -n "$SIPP_NICE"} sipp "127.0.0.1:$port" -sf bench/sipp/call.xml -i 127.0.0.1 -p $(( 5070 + i )) -r "$each" -m "$n" -d 0 \
      -buff_size 4194304 -nostdin -trace_stat -stf "$stf" -fd 1 -timeout $(( STEP + 30 )) >/dev/null 2>&1 &
    pids+=($!); files+=("$stf")
  done
  wait "${pids[@]}" 2>/dev/null || true
  python3 - "$n" "${files[@]}" <<'PY'
import csv, sys
n_each = int(sys.argv[1])
ok = failed = retr = 0.0
secs = 0.0
for f in sys.argv[2:]:
    rows = list(csv.reader(open(f), delimiter=';'))
    h, last = rows[0], rows[-1]
    g = lambda k: float(last[h.index(k)])
    ok += g("SuccessfulCall(C)"); failed += g("FailedCall(C)"); retr += g("Retransmissions(C)")
    e = last[h.index("ElapsedTime(C)")].split(":")
    secs = max(secs, int(e[0]) * 3600 + int(e[1]) * 60 + float(e[2]))
n = n_each * (len(sys.argv) - 2)
fail_pct = 100.0 * (n - ok) / n
retr_pct = 100.0 * retr / max(1.0, ok * 4)   # 4 retransmittable messages per call
verdict = "ok" if fail_pct <= 1.0 and retr_pct <= 1.0 else "fail"
print(f"{verdict} {ok / secs:.0f} {fail_pct:.2f} {retr_pct:.2f}")
PY
}

ramp() { # port label
  local best=0 best_cps=0
  for rate in $RATES; do
    local r; r=$(step "$1" "$rate" "$2")
    echo "    $2 at $rate/s: $r" >&2
    [ "${r%% *}" = ok ] || break
    best=$rate; best_cps=$(echo "$r" | cut -d' ' -f2)
  done
  echo "$best $best_cps"
}

setup() {
  echo
  echo "== call set-ups per second (INVITE -> 200+SDP, RTP port, first prompt packet -> ACK -> BYE -> 200), ${STEP} s per step"
  $L recv --duration 100000 >/dev/null 2>&1 &   # RTP sink for the engine's first packets
  local sink=$!
  start_vaxel "$out/vaxel-setup.log"
  local v; v=$(ramp 5060 vaxel); stop "$VP"
  if [ -n "${SETUP_VAXEL_ONLY:-}" ]; then   # comparing builds: the references once is enough
    stop "$sink"; echo "  highest passing rate: vaxel ${v% *}/s (achieved ${v#* }/s)"; return
  fi
  sipp -sn uas -i 127.0.0.1 -p 5080 -nostdin -buff_size 4194304 >/dev/null 2>&1 &
  local uas=$!
  sleep 0.5
  local s; s=$(ramp 5080 sipp-uas)
  local k="n/a"
  if command -v kamailio >/dev/null; then
    kamailio -f bench/kamailio.cfg -DD -E -x tlsf -X tlsf -m 256 -M 32 >"$out/kamailio.log" 2>&1 &
    local kp=$!
    sleep 1.5
    k=$(ramp 5060 kamailio)
    stop "$kp"
  fi
  stop "$uas" "$sink"
  echo "  highest passing rate / achieved:"
  echo "    vaxel                          ${v% *}/s  (achieved ${v#* }/s)"
  echo "    reference SIPp -> SIPp         ${s% *}/s  (achieved ${s#* }/s)"
  echo "    reference SIPp -> Kamailio tm  ${k% *}/s  (achieved ${k#* }/s)"
}

soak() {
  local mins=${SOAK_MIN:-10}
  echo
  echo "== soak: ${mins} min, 50 new calls/s of 10 s each (~500 up), RSS every 30 s"
  $L recv --duration 100000 >/dev/null 2>&1 &
  local sink=$!
  start_vaxel "$out/vaxel-soak.log" --rtp-timeout 3600
  sipp 127.0.0.1:5060 -sf bench/sipp/call.xml -i 127.0.0.1 -p 5070 -r 50 -l 2000 -d 10000 \
    -buff_size 4194304 -nostdin >/dev/null 2>&1 &
  local sp=$!
  local t=0 first=""
  while [ $t -lt $(( mins * 60 )) ]; do
    sleep 30; t=$(( t + 30 ))
    local r; r=$(rss_kib "$VP")
    [ -n "$first" ] || [ $t -lt 60 ] || first=$r
    echo "    t=${t}s RSS ${r} KiB"
  done
  stop "$sp"
  sleep 12
  echo "  RSS at 1 min: ${first} KiB; at end: $(rss_kib "$VP") KiB (after calls drained)"
  stop "$VP" "$sink"
}

# A throwaway PostgreSQL on loopback (as the postgres user when root).
pg_start() { # dir port
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
  mkdir -p "$1"; chown postgres "$1" 2>/dev/null || true
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/initdb" -D "$1/data" -A trust -U vaxel --no-sync >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$1/data" -o "-p $2 -k $1 -c listen_addresses=127.0.0.1 -c fsync=off" -l "$1/log" -w start >/dev/null
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$1/data" -m fast -w stop)
}

pct() { # p (0-100): percentile of the numbers on stdin
  sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "-"; exit} i=int((NR-1)*p/100+0.5)+1; print a[i]}'
}

flows_bench() {
  local n=${FLOW_CALLS:-200}
  echo
  echo "== the shipped flow, $n concurrent callers (half known): lookup latency, time to the human announcement"
  # The shipped flow with its hours always open (the bench runs at any hour).
  mkdir -p "$out/flows"
  sed -E 's/^(mon|tue|wed|thu|fri|sat|sun) = .*/\1 = "00:00-24:00"/; s/^holidays = .*/holidays = []/' \
    flows/webbshop.toml >"$out/flows/webbshop.toml"
  # Customers: every even call number of the bench's callers (+467<n>00000).
  { echo "number,name,language,tier"
    for i in $(seq 2 2 $(( n * 10 ))); do echo "+467${i}00000,Kund $i,sv,gold"; done; } >"$out/customers.csv"
  printf '%-10s %-6s %-18s %-26s %-26s %-8s\n' store calls "lookup p50/p99 ms" "human-option new p50/p99 s" "human-option known p50/p99" timeouts
  for store in sqlite postgres; do
    local url
    if [ "$store" = sqlite ]; then
      url="sqlite://$out/flows-bench.db"
    else
      pg_start "/tmp/vaxel-bench-pg-$$" 55432
      url="postgres://vaxel@127.0.0.1:55432/postgres"
    fi
    $V customers import "$out/customers.csv" --data "$url" >/dev/null
    FLOWS="$out/flows" DATA_URL="$url" start_vaxel "$out/vaxel-flows-$store.log" --rtp-timeout 3600
    # Each caller stays 8 s (past the announcement); $n at once, $((n * 5)) in all.
    sipp 127.0.0.1:5060 -sf bench/sipp/call.xml -i 127.0.0.1 -p 5070 -r $(( n / 8 )) -l "$n" -m $(( n * 5 )) -d 8000 \
      -buff_size 4194304 -nostdin -timeout 300 >/dev/null 2>&1 || true
    sleep 2
    stop "$VP"
    local q_lookup="SELECT lookup_ms FROM calls WHERE lookup_ms IS NOT NULL"
    local q_new="SELECT announced_ms FROM calls WHERE announced_ms IS NOT NULL AND known = 0"
    local q_known="SELECT announced_ms FROM calls WHERE announced_ms IS NOT NULL AND known = 1"
    local q_calls="SELECT COUNT(*) FROM calls"
    local run
    if [ "$store" = sqlite ]; then
      run() { python3 -c 'import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$out/flows-bench.db" "$1"; }
    else
      run() { psql "$url" -Atc "$1"; }
    fi
    secs() { awk '{printf "%.3f\n", $1/1000}'; }
    printf '%-10s %-6s %-18s %-26s %-26s %-8s\n' "$store" "$(run "$q_calls")" \
      "$(run "$q_lookup" | pct 50)/$(run "$q_lookup" | pct 99)" \
      "$(run "$q_new" | secs | pct 50)/$(run "$q_new" | secs | pct 99)" \
      "$(run "$q_known" | secs | pct 50)/$(run "$q_known" | secs | pct 99)" \
      "$(grep -c 'did not answer in time' "$out/vaxel-flows-$store.log" || true)"
    [ "$store" = postgres ] && { "${PG_STOP[@]}" >/dev/null; rm -rf "/tmp/vaxel-bench-pg-$$"; }
  done
  echo "  (nominal: the announcement follows the 2.90 s welcome, or for a known caller the 3.88 s greeting)"
}

# Past capacity: SIPp offers 1.2x and 2x TOP (the highest clean set-up rate of
# this machine's setup run) for STEP seconds; the engine should complete what
# it admits and refuse the rest at once with 503, not let everything time out.
# SIPP_NICE=-10 runs SIPp at the shards' raised priority (on 2 cores, a SIPp
# left at nice 0 is starved by the saturated engine and times calls out itself).
shed() {
  local top=${TOP:-10000}
  echo
  echo "== past capacity: offered 1.2x and 2x ${top}/s for ${STEP} s (SIPP_PROCS=${SIPP_PROCS:-1})"
  $L recv --duration 100000 >/dev/null 2>&1 &
  local sink=$!
  for mult in 12 20; do
    local rate=$(( top * mult / 10 ))
    start_vaxel "$out/vaxel-shed-$rate.log"
    local procs=${SIPP_PROCS:-1} pids=() files=()
    local each=$(( rate / procs )) n=$(( rate / procs * STEP ))
    for i in $(seq "$procs"); do
      local stf="$out/shed-$rate-$i.csv"
      timeout $(( STEP + 40 )) ${SIPP_NICE:+nice -n "$SIPP_NICE"} sipp 127.0.0.1:5060 -sf bench/sipp/call.xml -i 127.0.0.1 -p $(( 5070 + i )) -r "$each" -m "$n" -d 0 \
        -buff_size 4194304 -nostdin -trace_stat -stf "$stf" -fd 1 -timeout $(( STEP + 30 )) >/dev/null 2>&1 &
      pids+=($!); files+=("$stf")
    done
    wait "${pids[@]}" 2>/dev/null || true
    stop "$VP"
    python3 - "$rate" "$n" "$(grep -c ' 503 \|shed\|overloaded' "$out/vaxel-shed-$rate.log" || true)" "${files[@]}" <<'PY'
import csv, sys
rate, n_each = int(sys.argv[1]), int(sys.argv[2])
files = sys.argv[4:]
tot = {}
for f in files:
    rows = list(csv.reader(open(f), delimiter=';'))
    h, last = rows[0], rows[-1]
    for k in ("SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)", "FailedUnexpectedMessage(C)", "FailedMaxUDPRetrans(C)", "FailedCallRejected(C)"):
        if k in h:
            tot[k] = tot.get(k, 0.0) + float(last[h.index(k)])
n = n_each * len(files)
ok = tot.get("SuccessfulCall(C)", 0)
refused = tot.get("FailedUnexpectedMessage(C)", 0) + tot.get("FailedCallRejected(C)", 0)
timeouts = tot.get("FailedMaxUDPRetrans(C)", 0)
retr = tot.get("Retransmissions(C)", 0)
print(f"  offered {rate}/s ({n} calls): completed {100*ok/n:.1f} %, refused at once (503) {100*refused/n:.1f} %, "
      f"timed out {100*timeouts/n:.1f} %, other {100*(n-ok-refused-timeouts)/n:.1f} %, retransmissions {100*retr/max(1,n*4):.1f} % of messages")
PY
  done
  stop "$sink"
}

# Bridged calls: caller <-> engine <-> agent, RTP both ways at 50 packets/s per
# leg, from vaxel-bridgeload (bench/bridge.rs), which is both the callers and
# BRIDGE_CALLS + PROBES registered agents. Reference: the same load through a
# bare UDP reflector. Also REGISTER with digest per second against Kamailio.
# The bridged-call benchmarks' configuration: agents a0… (password
# bench-pw-N) available as soon as their phones register, no wrap-up.
agents_config() { # file, number of agents
  cp bench/vaxel.toml "$1"
  printf '[acd]\navailable_on_register = true\n\n[queues.kundtjanst]\nring_timeout_s = 30\nwrap_up_s = 0\n\n' >>"$1"
  for i in $(seq 0 $(( $2 - 1 ))); do
    printf '[[agents]]\nid = "a%d"\npassword = "bench-pw-%d"\n' "$i" "$i" >>"$1"
  done
}

bridge() {
  local n=${BRIDGE_CALLS:-1000} probes=${PROBES:-50}
  local B=target/release/vaxel-bridgeload
  local cfg=$out/bridge.toml
  agents_config "$cfg" $(( n + probes ))
  echo
  echo "== bridged calls ($n, measured ${MEASURE} s; reference: a bare UDP reflector)"
  $B reflector --duration $(( MEASURE + 40 )) &
  local rp=$!
  sleep 0.5
  $B run --reflector 127.0.0.1:45000,127.0.0.1:45001 --calls "$n" --measure "$MEASURE" --pid "$rp" >"$out/bridge-ref-$n.txt"
  stop "$rp"
  cfg_args=(--config "$cfg")
  start_vaxel "$out/vaxel-bridge-$n.log" --rtp-timeout 3600
  $B run --calls "$n" --probes "$probes" --rate "${BRIDGE_RATE:-200}" --measure "$MEASURE" --pid "$VP" >"$out/bridge-$n.txt"
  stop "$VP"
  local f="$out/bridge-$n.txt" r="$out/bridge-ref-$n.txt"
  printf '%-10s %-10s %-10s %-12s %-12s %-12s %-10s\n' "" bridged "loss %" "delay p50" "delay p99" "cpu us/pkt" "KiB/call"
  printf '%-10s %-10s %-10s %-12s %-12s %-12s %-10s\n' vaxel "$(val bridged "$f")" "$(val loss_pct "$f")" "$(val delay_p50_ms "$f")" "$(val delay_p99_ms "$f")" "$(val cpu_us_per_pkt "$f")" "$(val rss_kib_per_call "$f")"
  printf '%-10s %-10s %-10s %-12s %-12s %-12s %-10s\n' reflector "$(val bridged "$r")" "$(val loss_pct "$r")" "$(val delay_p50_ms "$r")" "$(val delay_p99_ms "$r")" "$(val cpu_us_per_pkt "$r")" -
  echo "  packets/s forwarded: vaxel $(val received_pps "$f"), reflector $(val received_pps "$r")"
  echo "  key 0 to the agent's phone ringing, $(val ring_probes "$f") probes with $n calls up: p50 $(val ring_p50_ms "$f") ms, p99 $(val ring_p99_ms "$f") ms (during set-up: p99 $(val ring_setup_p99_ms "$f") ms)"
  echo "  agents registered: $(val registered "$f") in $(val register_s "$f") s"
}

# Browser legs relayed to SIP agents: the same bridged-call load with the
# callers as WebRTC endpoints (ICE, DTLS-SRTP, one socket each), beside plain
# RTP callers in the same run.
webrtc_bench() {
  local n=${WEBRTC_CALLS:-500} probes=${PROBES:-20}
  local B=target/release/vaxel-bridgeload
  local cfg=$out/webrtc.toml
  agents_config "$cfg" $(( n + probes ))
  cfg_args=(--config "$cfg")
  echo
  echo "== $n browser legs (DTLS-SRTP) relayed to SIP agents, beside $n plain RTP callers (measured ${MEASURE} s each)"
  printf '%-10s %-10s %-10s %-12s %-12s %-12s %-10s %-10s\n' "" bridged "loss %" "delay p50" "delay p99" "cpu us/pkt" "KiB/call" "DTLS/s"
  for mode in plain webrtc; do
    start_vaxel "$out/vaxel-webrtc-$mode.log" --rtp-timeout 3600
    local extra=()
    [ "$mode" = webrtc ] && extra=(--webrtc)
    $B run --calls "$n" --probes "$probes" --rate "${WEBRTC_RATE:-100}" --warmup 5 --measure "$MEASURE" --pid "$VP" "${extra[@]}" >"$out/webrtc-$mode.txt"
    stop "$VP"
    local f="$out/webrtc-$mode.txt"
    printf '%-10s %-10s %-10s %-12s %-12s %-12s %-10s %-10s\n' "$mode" "$(val bridged "$f")" "$(val loss_pct "$f")" "$(val delay_p50_ms "$f")" "$(val delay_p99_ms "$f")" "$(val cpu_us_per_pkt "$f")" "$(val rss_kib_per_call "$f")" "$(val dtls_per_s "$f")"
    echo "  delay p99 to the callers $(val delay_p99_to_callers_ms "$f") ms, to the agents $(val delay_p99_to_agents_ms "$f") ms"
  done
}

# The HTTP shell under load: bridged calls alone, then the same with 200
# wallboards and API clients; the difference is what the wallboards cost.
http_bench() {
  local n=${HTTP_CALLS:-500} probes=${PROBES:-20} walls=${WALLBOARDS:-200}
  local B=target/release/vaxel-bridgeload H=target/release/vaxel-httpload
  local cfg=$out/http.toml
  agents_config "$cfg" 0
  printf '[http]\nlisten = "127.0.0.1:8080"\nadmin_tokens = ["bench-admin-token-0123456789"]\nread_tokens = ["bench-read-token-0123456789"]\n\n' >>"$cfg"
  # An agent with no phone, whose status the load flips (the picture changes).
  printf '[[agents]]\nid = "wallboard-flap"\npassword = "bench-flap-pw"\n\n' >>"$cfg"
  for i in $(seq 0 $(( n + probes - 1 ))); do
    printf '[[agents]]\nid = "a%d"\npassword = "bench-pw-%d"\n' "$i" "$i" >>"$cfg"
  done
  cfg_args=(--config "$cfg")
  echo
  echo "== $walls wallboards and API clients on top of $n bridged calls (measured ${MEASURE} s each)"
  printf '%-22s %-10s %-10s %-12s %-12s\n' "" bridged "loss %" "delay p99" "cpu us/pkt"
  for mode in alone wallboards wallboards+api; do
    start_vaxel "$out/vaxel-http-$mode.log" --rtp-timeout 3600
    local hp="" rate=0
    [ "$mode" = wallboards+api ] && rate=${API_RATE:-200}
    if [ "$mode" != alone ]; then
      # Starts when the calls are up (the bridge load's set-up takes n/200 s).
      ( sleep $(( n / 200 + 8 )); $H --token bench-read-token-0123456789 --admin bench-admin-token-0123456789 \
          --wallboards "$walls" --api-clients "${API_CLIENTS:-4}" --api-rate "$rate" --flap-agent wallboard-flap --pid "$VP" \
          --duration $(( MEASURE + 4 )) >"$out/httpload-$mode.txt" ) &
      hp=$!
    fi
    $B run --calls "$n" --probes "$probes" --rate 200 --warmup 10 --measure "$MEASURE" --pid "$VP" >"$out/http-$mode.txt"
    [ -n "$hp" ] && wait "$hp"
    stop "$VP"
    local f="$out/http-$mode.txt"
    printf '%-22s %-10s %-10s %-12s %-12s\n' "$mode" "$(val bridged "$f")" "$(val loss_pct "$f")" "$(val delay_p99_ms "$f")" "$(val cpu_us_per_pkt "$f")"
  done
  local h=$out/httpload-wallboards.txt
  echo "  wallboards connected: $(val streams "$h"), events they received: $(val events "$h")"
  echo "  engine CPU $(val engine_cpu_pct "$h") % of a core, of which the HTTP thread $(val http_thread_cpu_pct "$h") % and the ACD owner $(val acd_thread_cpu_pct "$h") %"
  h=$out/httpload-wallboards+api.txt
  echo "  GET /api/v1/queues at ${API_RATE:-200}/s: $(val api_requests "$h") requests, p50 $(val api_p50_ms "$h") ms, p99 $(val api_p99_ms "$h") ms, max $(val api_max_ms "$h") ms, errors $(val api_errors "$h")"
  echo "  with the API load: engine CPU $(val engine_cpu_pct "$h") %, HTTP thread $(val http_thread_cpu_pct "$h") %, ACD owner $(val acd_thread_cpu_pct "$h") %"
}

# REGISTER with digest per second: SIPp registering agents against the engine's
# registrar and against Kamailio's (usrloc in memory, auth with the same
# passwords), stepping the rate until more than 1 % fail.
register_bench() {
  local n=${REG_AGENTS:-2000}
  local cfg=$out/register.toml csv=$out/agents.csv
  cp bench/vaxel.toml "$cfg"
  # SIPp answers the first challenge whatever its algorithm, and knows MD5 only.
  printf '[acd]\ndigest_algorithms = ["MD5"]\n\n' >>"$cfg"
  echo "SEQUENTIAL" >"$csv"
  for i in $(seq 0 $(( n - 1 ))); do
    printf '[[agents]]\nid = "a%d"\npassword = "bench-pw-%d"\n' "$i" "$i" >>"$cfg"
    printf "a%d;[authentication username=a%d password=bench-pw-%d]\n" "$i" "$i" "$i" >>"$csv"
  done
  echo
  echo "== REGISTER with digest per second (reference: Kamailio, in-memory usrloc + auth)"
  printf '%-10s %-12s %-10s\n' rate vaxel kamailio
  cfg_args=(--config "$cfg")
  start_vaxel "$out/vaxel-register.log"
  kamailio -f bench/kamailio-registrar.cfg -DD -E -x tlsf -X tlsf -w "$out" >"$out/kamailio-reg.log" 2>&1 &
  local kp=$!
  sleep 2
  for rate in ${REG_RATES:-"1000 2000 4000 6000 8000 10000"}; do
    local res=()
    for port in 5060 5064; do
      local stf="$out/register-$port-$rate.csv"
      timeout $(( STEP + 40 )) sipp "127.0.0.1:$port" -sf bench/sipp/register.xml -inf "$csv" -i 127.0.0.1 -p 5090 -r "$rate" -m $(( rate * STEP )) \
        -buff_size 4194304 -nostdin -trace_stat -stf "$stf" -fd 1 -timeout $(( STEP + 30 )) >/dev/null 2>&1 || true
      res+=("$(python3 - "$stf" "$(( rate * STEP ))" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
ok = float(last[h.index("SuccessfulCall(C)")]); n = int(sys.argv[2])
e = last[h.index("ElapsedTime(C)")].split(":")
secs = int(e[0]) * 3600 + int(e[1]) * 60 + float(e[2])
print(f"{ok/secs:.0f}/s{'' if ok >= 0.99 * n else ' (fail)'}")
PY
)")
    done
    printf '%-10s %-12s %-10s\n' "$rate" "${res[0]}" "${res[1]}"
  done
  stop "$kp" "$VP"
}

case "$what" in
  bridge) bridge ;;
  http) http_bench ;;
  webrtc) webrtc_bench ;;
  register) register_bench ;;
  flows) flows_bench ;;
  shed) shed ;;
  media) media ;;
  setup) setup ;;
  soak) soak ;;
  all) media; setup ;;
  *) echo "usage: $0 [media|setup|shed|soak|flows|bridge|http|webrtc|register|all]"; exit 2 ;;
esac
