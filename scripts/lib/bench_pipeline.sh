#!/usr/bin/env bash
# scripts/bench pipeline: the whole pipeline under load, as a hub feels it. All services in
# one mash process on a fresh database, the demo directory with every agency behind a local
# webhook receiver that answers 2xx, distinct synthetic children (a share of them referred
# again), referrals arriving open loop at fixed rates and then as one burst, and a
# practitioner (the load generator) confirming each recommendation as it reaches the queue.
# Each hop's time is read from the services' own tables. The probe of the same run is pgbench
# of intake's own statement (shared/design/performance.md), so the table gives the sustained
# rate as a ratio to it. Not part of scripts/test.
#
# Last, a history phase: one child referred PIPE_HISTORY times first, then referrals at
# PIPE_HISTORY_RATE/s alternating between that child and new ones, each group's hops apart.
#
#   scripts/bench pipeline                                   # 50 100 200 400/s for 25 s, burst of 20,000, history of 200
#   PIPE_RATES="50 200" PIPE_SECONDS=10 PIPE_BURST=2000 PIPE_HISTORY=0 scripts/bench pipeline   # a quick look
#   PIPE_DECIDERS=32 ...                                     # the bench's practitioners deciding in parallel (8)
#   PIPE_MIX=demo ...                                        # the demo's mix of scenarios and referrers instead of
#                                                            # the example referral (Red, level 4) every time
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
source scripts/lib/postgres.sh

rates=${PIPE_RATES:-50 100 200 400}
secs=${PIPE_SECONDS:-25}
burst=${PIPE_BURST:-20000}
repeat_share=${PIPE_REPEAT_SHARE:-0.1}
history=${PIPE_HISTORY:-200}
mix=${PIPE_MIX:-example}
history_rate=${PIPE_HISTORY_RATE:-20}
http_port=${BENCH_HTTP_PORT:-28080}
grpc_port=${BENCH_GRPC_PORT:-29090}
nats_port=${BENCH_NATS_PORT:-24223}
hook_port=${BENCH_HOOK_PORT:-28099}

pg_ensure
# The pipeline churns queue and outbox rows; without autovacuum their dead rows pile up for the
# whole run and every claim and poll slows down with them, which no production server would
# show. A server with autovacuum off (a CI-tuned one, say) is left alone and the bench runs on a
# throwaway cluster with PostgreSQL's defaults instead (PIPE_KEEP_SERVER=1 keeps it anyway).
if [[ ${PIPE_KEEP_SERVER:-} != 1 && $(psql -tA "$DATABASE_URL" -c 'SHOW autovacuum' 2>/dev/null) == off ]]; then
  echo "bench: autovacuum is off on $DATABASE_URL's server; using a throwaway cluster with PostgreSQL's defaults" >&2
  unset DATABASE_URL
  MASH_PG_THROWAWAY=1 pg_ensure
fi
work=$(mktemp -d)
mash_pid=
trap 'kill $mash_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; pg_stop_if_started' EXIT
# Killed, bash would skip the EXIT trap and leave mash and a throwaway cluster running.
trap 'exit 143' INT TERM

db_url() {
  python3 - "$DATABASE_URL" "$1" <<'PY'
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1]); print(u.urlunparse(p._replace(path='/' + sys.argv[2])))
PY
}
bench_url=$(db_url mash_pipeline)
probe_url=$(db_url mash_pipeline_probe)
for db in mash_pipeline mash_pipeline_probe; do
  psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
echo "building..." >&2
go build -o "$work/mash" ./services/mash
go build -o "$work/loadgen" ./scripts/loadgen
DATABASE_URL=$probe_url "$work/mash" migrate >/dev/null
"$work/loadgen" pgbench-script -vars "$work/intake.vars" >"$work/intake.sql"
intake_vars=()
while IFS= read -r line; do intake_vars+=(-D "$line"); done <"$work/intake.vars"

# The demo directory, every agency's channel a webhook to the load generator's receiver.
export BENCH_HOOK_SECRET
BENCH_HOOK_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
sed "s|^    channel: nats\$|    channel: webhook\n    url: http://127.0.0.1:$hook_port/hook\n    secretEnv: BENCH_HOOK_SECRET|" \
  scripts/demo/directory.yaml >"$work/directory.yaml"
if grep -q 'channel: nats' "$work/directory.yaml"; then
  echo "bench: the demo directory has a channel line this script does not rewrite" >&2
  exit 1
fi

"$work/mash" audit keygen 2>/dev/null >"$work/keys.env"
set -a; source "$work/keys.env"; set +a
export DATABASE_URL=$bench_url MASH_DATA_DIR=$work/data MASH_GRPC_ADDR=127.0.0.1:$grpc_port \
  MASH_HTTP_ADDR=127.0.0.1:$http_port MASH_NATS_LISTEN=127.0.0.1:$nats_port MASH_LOG_LEVEL=warn \
  MASH_SERVICES=all MASH_RATE_CREDENTIAL=0 MASH_MAX_CONNS=0 MASH_NOTIFY_DIRECTORY=$work/directory.yaml \
  MASH_CASE_KEK=$(head -c 32 /dev/urandom | base64)
"$work/mash" migrate >/dev/null
# The referrer is an agency of the demo directory, so its receipts and outcomes are routed too.
referrer=$("$work/mash" clients create --agency south-wales-police --kind police --role referrer 2>/dev/null)
practitioner=$("$work/mash" clients create --agency bench-mash --kind hub --role practitioner --partnerships '*' 2>/dev/null)
# The demo mix refers from each of the demo's referring agencies, each with its own credential.
mix_args=(-mix "$mix")
if [[ $mix == demo ]]; then
  "$work/loadgen" demo-sources | while read -r agency kind; do
    echo "$agency $("$work/mash" clients create --agency "$agency" --kind "$kind" --role referrer 2>/dev/null)"
  done >"$work/source-tokens"
  mix_args+=(-source-tokens "$work/source-tokens")
  if [[ $history -gt 0 ]]; then
    echo "bench: the history phase refers the example's child; skipped with PIPE_MIX=demo" >&2
    history=0
  fi
fi
mkdir -p .local/bench
if curl -fsS "http://$MASH_HTTP_ADDR/readyz" >/dev/null 2>&1; then
  echo "bench: something already answers on $MASH_HTTP_ADDR; stop it or set BENCH_HTTP_PORT" >&2
  exit 1
fi
"$work/mash" serve 2>.local/bench/pipeline-mash.log &
mash_pid=$!
for _ in $(seq 1 300); do curl -fsS "http://$MASH_HTTP_ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
if ! kill -0 "$mash_pid" 2>/dev/null || ! curl -fsS "http://$MASH_HTTP_ADDR/readyz" >/dev/null 2>&1; then
  echo "bench: mash did not become ready; its log (.local/bench/pipeline-mash.log) ends:" >&2
  tail -5 .local/bench/pipeline-mash.log >&2
  exit 1
fi
sleep 2 # the set-up's own events (clients created) reach the audit log before the first phase

PGBENCH=$(command -v pgbench || echo "$PG_BIN/pgbench")
echo "probe: pgbench of intake's own statement, closed loop, 16 clients, ${secs}s..." >&2
psql -q "$probe_url" -c CHECKPOINT
probe_tps=$("$PGBENCH" -n -M prepared -f "$work/intake.sql" "${intake_vars[@]}" -c 16 -j 2 -T "$secs" "$probe_url" 2>/dev/null |
  sed -n 's/^tps = \([0-9.]*\).*/\1/p')

results=$work/results.jsonl
# Each phase's new children start at a serial of their own, so no phase re-refers another's.
phase_no=0
run_phase() {
  phase_no=$((phase_no + 1))
  psql -q "$bench_url" -c CHECKPOINT
  "$work/loadgen" pipeline -addr "$MASH_GRPC_ADDR" -token "$referrer" -decider-token "$practitioner" -db "$bench_url" \
    -metrics "http://$MASH_HTTP_ADDR/metrics" \
    -hook-addr "127.0.0.1:$hook_port" -mash-pid "$mash_pid" -repeat-share "$repeat_share" \
    -deciders "${PIPE_DECIDERS:-8}" -first-child $((phase_no * 100000)) "${mix_args[@]}" "$@" | tee -a "$results" >&2
}
for rate in $rates; do
  echo "phase: $rate referrals/s for ${secs}s..." >&2
  run_phase -rps "$rate" -d "${secs}s" -prefix "p$rate"
done
if [[ "$burst" -gt 0 ]]; then
  echo "phase: a burst of $burst referrals at once..." >&2
  run_phase -burst "$burst" -prefix "burst" -drain-timeout 10m
fi
if [[ "$history" -gt 0 ]]; then
  echo "phase: one child referred $history times, then $history_rate/s for ${secs}s, half of them for that child..." >&2
  run_phase -history "$history" -rps "$history_rate" -d "${secs}s" -prefix "history"
fi

pgver=$(psql -tA "$bench_url" -c 'SHOW server_version' | cut -d' ' -f1)
natsver=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
echo
echo "machine: $(nproc) cores, $(uname -sr), PostgreSQL $pgver, nats-server $natsver embedded; all services in one process; ${secs}s per rate; repeat share $repeat_share; referrals: $mix"
python3 - "$results" "${probe_tps:-0}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
probe = float(sys.argv[2])
def hop(r, name, q="p99_ms"):
    h = r["hops"].get(name)
    return h[q] if h else None
def ms(v):
    return "-" if v is None else (f"{v/1000:.2f} s" if v >= 1000 else f"{v:.0f} ms")
print(f"probe: pgbench of intake's own statement, 16 clients: {probe:,.0f} tps")
print()
hops = ["1 received -> recommended", "2 recommended -> on the queue", "3 on the queue -> decided (bench practitioner)",
        "4 decided -> every agency told", "5 last agency told -> last audit entry", "received -> on the queue", "received -> last audit entry"]
head = ["phase", "achieved/s", "ack p99"] + [h.split(" ", 1)[1] if h[0].isdigit() else h for h in hops] + ["drain", "flat", "messages sent/ref", "transactions/ref", "rows written/ref", "WAL KiB/ref", "peak MiB"]
table = []
sustained = 0.0
for r in rows:
    name = {"pipeline": f"{r['rate']:.0f}/s", "history": f"history {r['rate']:.0f}/s"}.get(r["mode"], f"burst {r['referrals']}")
    growth = max((b["growth_per_s"] for b in r["backlogs"].values()), default=0)
    # Flat: no backlog grew by more than 2% of the arrival rate per second over the load's
    # second half, and the pipeline emptied within 5 s of the load stopping.
    flat = r["mode"] == "pipeline" and growth <= 0.02 * max(r["rate"], 1) and r["drain_seconds"] <= 5 and not r.get("incomplete")
    if flat:
        sustained = max(sustained, r["achieved"])
    cells = [name, f"{r['achieved']:.0f}", ms(r["ack_p99_ms"])]
    cells += [f"{ms(hop(r, h, 'p50_ms'))} / {ms(hop(r, h))}" for h in hops]
    cells += [f"{r['drain_seconds']:.1f} s" + (" (incomplete: " + r["incomplete"] + ")" if r.get("incomplete") else ""),
              ("yes" if flat else f"no (+{growth:.0f}/s)") if r["mode"] == "pipeline" else "-",
              f"{r.get('deliveries', 0) / max(r['referrals'], 1):.1f}",
              f"{r['commits_per_referral']:.1f}", f"{r['inserts_per_referral'] + r['updates_per_referral']:.0f}", f"{r.get('wal_kib_per_referral', 0):.0f}", f"{r['peak_rss_mib']:.0f}"]
    table.append(cells)
print("hops: p50 / p99")
for i, h in enumerate(head):
    print(f"{h:<34}" + "  ".join(f"{row[i]:>18}" for row in table))
print()
goals = []
r200 = next((r for r in rows if r["mode"] == "pipeline" and r["rate"] == 200), None)
burst = next((r for r in rows if r["mode"] == "burst"), None)
peak = max((r["peak_rss_mib"] for r in rows), default=0)
ratio = sustained / probe if probe else 0
goals.append(("sustained rate with flat backlogs / pgbench intake", f"{sustained:.0f}/s", f"{ratio:.2f}", ">= 0.5", ratio >= 0.5))
if r200:
    q, a = hop(r200, "received -> on the queue"), hop(r200, "received -> last audit entry")
    goals.append(("200/s: received -> on the queue p99", ms(q), "", "<= 250 ms", q is not None and q <= 250))
    goals.append(("200/s: received -> last audit entry p99", ms(a), "", "<= 1 s", a is not None and a <= 1000))
if burst:
    total = burst["load_seconds"] + burst["drain_seconds"]
    goals.append((f"burst of {burst['referrals']}: all decided, told and audited", f"{total:.0f} s", "", "<= 120 s", total <= 120 and not burst.get("incomplete")))
goals.append(("mash peak memory", f"{peak:.0f} MiB", "", "< 500 MiB", peak < 500))
hist = next((r for r in rows if r["mode"] == "history"), None)
if hist:
    for h in ["received -> recommended", "received -> on the queue"]:
        old, new = hist["history_hops"].get(h), hist["new_child_hops"].get(h)
        if old and new:
            ratio = old["p99_ms"] / new["p99_ms"] if new["p99_ms"] else 0
            goals.append((f"child with {hist['history']} earlier referrals: {h} p99 / new child's",
                          f"{ms(old['p99_ms'])} / {ms(new['p99_ms'])}", f"{ratio:.2f}", "<= 1.2", ratio <= 1.2))
for g in goals:
    print(f"{g[0]:<58}{g[1]:>12}{g[2]:>8}  {g[3]:<10}{'pass' if g[4] else 'short'}")
print("mash's log: .local/bench/pipeline-mash.log")
PY
