#!/usr/bin/env bash
# bench.sh measures cdc2s3 against its baselines on this machine (make
# bench), with nothing to set up:
#
#   1. installs the PostgreSQL 15 server if needed (scripts/ensure-postgres.sh),
#      builds versitygw if needed (scripts/tools.sh), bin/cdc2s3 and the
#      bench program (bench/, into bin/cdc2s3-bench);
#   2. starts a throwaway PostgreSQL 15 cluster in a temp dir (wal_level =
#      logical; its unix socket with trust auth, and 127.0.0.1 with a random
#      password) and a versitygw S3 server on 127.0.0.1 with random
#      credentials;
#   3. runs bin/cdc2s3-bench: A. full load vs COPY, B. draining a backlog
#      vs pg_recvlogical (local directory and S3), C. commit-to-visible
#      latency, D. one large transaction, E. an online reload, F. the full
#      load of one large value; it prints a summary and writes
#      the results section of docs/benchmarks.md;
#   4. stops everything it started and removes the temp dir, also on
#      failure or Ctrl-C.
#
# With the defaults it takes about 10-15 minutes on 2 CPUs. Environment:
#   BENCH_SNAPSHOT_ROWS (5000000)  rows of the full-load table
#   BENCH_SNAPSHOT_WORKERS (1,2,4) --snapshot-workers values to run
#   BENCH_SNAPSHOT_COMPRESSIONS (snappy,none)  other --compression values,
#                                  run with the first worker count ("-": none)
#   BENCH_DISTLOAD_WORKERS (1,2,4) worker processes of the distributed load
#                                  (snapshot --plan, one --unit process per
#                                  unit) run after the snapshots in phase A
#                                  ("-": none)
#   BENCH_DISTLOAD_CHUNK (64MB)    its --snapshot-chunk-size: one unit's size
#   BENCH_CHANGES (1000000)        backlog size: 80% inserts in one
#                                  transaction, 20% single-row updates
#   BENCH_TXN_SIZE (100)           updates per transaction in the backlog
#   BENCH_LOAD_REPEAT (3)          runs of each full-load measurement; the
#                                  fastest is reported
#   BENCH_STREAM_REPEAT (2)        cdc2s3 drains into each destination; the
#                                  fastest is reported
#   BENCH_LATENCY_RATE (1000)      changes per second for the latency test
#   BENCH_LATENCY_SECONDS (30)     how long the latency load runs
#   BENCH_LATENCY_FLUSH (1s)       cdc2s3 --flush-interval for it
#   BENCH_BIGTXN_ROWS (5000000)    rows of the one-transaction test, 0 skips it
#   BENCH_RELOAD_ROWS (1000000)    rows of the table phase E reloads online
#   BENCH_RELOAD_UPDATE_RATE (200) updates per second during the reload
#   BENCH_BIGVALUE_MB (100)        size of the one value phase F loads
#   BENCH_BIGVALUE_TYPES (jsonb,text,bytea)  its column types, one table each
#   BENCH_PHASES (load,stream,latency,bigtxn,reload,bigvalue)  which phases to run
#   BENCH_TRANSPORTS (tcp,unix)    how clients reach PostgreSQL: every phase
#                                  over the first, phase B over each
#   BENCH_PERF (0)                 1: profile cdc2s3's local drain with perf
#   BENCH_DOC (docs/benchmarks.md) where to write the results; "none": nowhere
#   BENCH_KEEP (0)                 1: keep the work dir (logs, profiles)
#   BENCH_QUIET_WAIT (20s)         how long to wait, before each measurement,
#                                  for other load on the machine to stop
#   CDC2S3_PG_BINDIR               instead of /usr/lib/postgresql/15/bin
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
pg_bin=${CDC2S3_PG_BINDIR:-/usr/lib/postgresql/15/bin}
tools_bin="${CDC2S3_TOOLS_DIR:-${HOME:?HOME is not set}/.cache/cdc2s3/tools}/bin"

tmp=""
pg_running=""
vgw_pid=""

script=bench.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# cleanup stops what the script started, by process id, and removes the
# temp dir. It runs on every exit.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 && -n "$tmp" ]]; then
		show_log postgres "$tmp/postgres.log"
		show_log versitygw "$tmp/versitygw.log"
		echo "bench: logs of the measured processes: $tmp/work/logs (kept)" >&2
	fi
	kill_pid "$vgw_pid"
	if [[ -n "$pg_running" ]]; then
		pg_cluster_stop "$tmp"
	fi
	if [[ -n "$tmp" ]]; then
		if [[ $rc -eq 0 && "${BENCH_KEEP:-0}" != 1 ]]; then
			rm -rf "$tmp"
		else
			# Keep the logs for a look; drop the bulky data.
			rm -rf "$tmp/data" "$tmp/s3" "$tmp/work/tmp"
			echo "bench: kept $tmp" >&2
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
command -v go >/dev/null || die "go is not on PATH: install Go (see go.mod for the version)"

say "checking for PostgreSQL 15 and versitygw"
bash scripts/ensure-postgres.sh
for prog in psql pg_recvlogical; do
	[[ -x "$pg_bin/$prog" ]] || die "$pg_bin/$prog is missing: install postgresql-client-15"
done
bash scripts/tools.sh

say "building bin/cdc2s3 and bin/cdc2s3-bench"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -trimpath -ldflags "-X main.version=$version" -o bin/cdc2s3 ./cmd/cdc2s3
go build -o bin/cdc2s3-bench ./bench
echo "    $(bin/cdc2s3 --version)"

say "starting a throwaway PostgreSQL 15 cluster"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdc2s3-bench.XXXXXX")
chmod 700 "$tmp"
port=$(free_port)
# A throwaway server tuned for bulk work: no fsync, WAL kept between
# checkpoints for the whole backlog, no autovacuum running mid-measurement
# (the bench vacuums what it reads). logical_decoding_work_mem stays at its
# default (64MB), so large transactions spill in the walsender as they
# would in production.
pg_cluster_init "$tmp" "$port" <<EOF
max_replication_slots = 16
max_wal_senders = 16
fsync = off
full_page_writes = off
shared_buffers = 256MB
max_wal_size = 16GB
checkpoint_timeout = 30min
autovacuum = off
EOF
# The clients connect over TCP on 127.0.0.1, as a daemon reaches its
# database in production and as the issue's baseline was measured; the
# drain of phase B is measured over the Unix socket too (BENCH_TRANSPORTS).
pg_cluster_tcp "$tmp"
pg_cluster_start "$tmp"
pg_running=1
pg_password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
pg_cluster_password "$tmp" "$port" "$pg_password"

say "starting versitygw on 127.0.0.1"
mkdir -p "$tmp/s3/data" "$tmp/s3/sidecar" "$tmp/work"
s3_port=$(free_port)
s3_access=bench$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
s3_secret=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
(cd "$tmp/s3" && exec env ROOT_ACCESS_KEY_ID="$s3_access" ROOT_SECRET_ACCESS_KEY="$s3_secret" \
	"$tools_bin/versitygw" --port "127.0.0.1:$s3_port" --region us-east-1 --quiet \
	posix --sidecar "$tmp/s3/sidecar" "$tmp/s3/data") >"$tmp/versitygw.log" 2>&1 &
vgw_pid=$!
for _ in $(seq 150); do
	(: <"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
	kill -0 "$vgw_pid" 2>/dev/null || die "versitygw exited"
	sleep 0.2
done
(: <"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null || die "versitygw did not listen on 127.0.0.1:$s3_port within 30s"

say "measuring"
PGPASSWORD=$pg_password BENCH_S3_ACCESS_KEY=$s3_access BENCH_S3_SECRET_KEY=$s3_secret \
	bin/cdc2s3-bench -pg-socket "$tmp" -pg-tcp 127.0.0.1 -pg-port "$port" -pg-bin "$pg_bin" \
	-s3-endpoint "http://127.0.0.1:$s3_port" -s3-pid "$vgw_pid" -work "$tmp/work" -cdc2s3 bin/cdc2s3 \
	-doc "${BENCH_DOC:-$repo/docs/benchmarks.md}"

echo
echo "bench: done in $((SECONDS - start))s"
