#!/usr/bin/env bash
# demo.sh shows cdc2s3 end to end on this machine in about a minute, with
# nothing to set up:
#
#   1. installs the PostgreSQL 15 server if needed (scripts/ensure-postgres.sh)
#      and builds bin/cdc2s3;
#   2. starts a throwaway PostgreSQL cluster in a temp dir (wal_level =
#      logical, reachable only on a unix socket in that private dir, trust
#      auth);
#   3. runs `cdc2s3 generate --rate 100` (a demo schema with a steady mix of
#      inserts, updates and deletes) and `cdc2s3 run --dest ./demo-output
#      --flush-interval 5s` (full load, then change data capture) for about
#      30 seconds;
#   4. stops both with SIGTERM, waits for them and checks they exited 0;
#   5. prints `cdc2s3 inspect --dest ./demo-output`, writes the DuckDB catalog of its tables
#      (./demo-output.duckdb.sql) and shows how to query it;
#   6. runs `cdc2s3 validate` on ./demo-output against the demo's source, which
#      compares every table's current state with the source and fails the demo
#      if one differs.
#
# The cluster is always torn down, also on failure or Ctrl-C. ./demo-output
# is removed at the start and kept at the end for you to query.
#
# Environment: DEMO_SECONDS (default 30) is how long run and generate run
# together; DEMO_RATE (default 100) is generate's operations per second;
# CDC2S3_PG_BINDIR overrides /usr/lib/postgresql/15/bin.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
out_dir=demo-output
bin=$repo/bin/cdc2s3
seconds=${DEMO_SECONDS:-30}
rate=${DEMO_RATE:-100}
pg_bin=${CDC2S3_PG_BINDIR:-/usr/lib/postgresql/15/bin}

tmp=""
gen_pid=""
run_pid=""
pg_running=""

script=demo.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# cleanup stops whatever the demo started, by process id, and removes the
# cluster. It runs on every exit.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	kill_pid "$run_pid"
	kill_pid "$gen_pid"
	# Logs help after a failure, not after Ctrl-C or SIGTERM.
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 && -n "$tmp" ]]; then
		show_log "cdc2s3 run" "$tmp/run.log"
		show_log "cdc2s3 generate" "$tmp/generate.log"
		show_log "postgres" "$tmp/postgres.log"
	fi
	if [[ -n "$pg_running" ]]; then
		pg_cluster_stop "$tmp"
	fi
	if [[ -n "$tmp" ]]; then
		rm -rf "$tmp"
	fi
	if [[ $rc -eq 0 ]]; then
		echo "demo: cluster removed; the output stays in ./$out_dir"
	elif [[ $rc -eq 130 || $rc -eq 143 ]]; then
		echo "demo: interrupted; cluster removed" >&2
	else
		echo "demo: cluster removed after a failure (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_proc sends SIGTERM to one of our processes, waits up to a timeout
# for it to exit and fails unless it exited 0.
stop_proc() {
	local name=$1 pid=$2 timeout=$3 log=$4 rc
	kill -TERM "$pid" 2>/dev/null || die "$name (pid $pid) had already exited"
	for _ in $(seq $((timeout * 5))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		show_log "$name" "$log"
		die "$name did not exit within ${timeout}s of SIGTERM"
	fi
	if wait "$pid"; then rc=0; else rc=$?; fi
	if [[ $rc -ne 0 ]]; then
		show_log "$name" "$log"
		die "$name exited with status $rc after SIGTERM (want 0)"
	fi
	echo "    $name stopped cleanly (exit 0)"
}

# alive fails the demo when one of our processes has exited early.
alive() {
	local name=$1 pid=$2 log=$3 rc
	if ! kill -0 "$pid" 2>/dev/null; then
		if wait "$pid"; then rc=0; else rc=$?; fi
		show_log "$name" "$log"
		die "$name exited early with status $rc"
	fi
}

count_files() { find "$out_dir" -name "$1" -type f 2>/dev/null | wc -l; }

start=$SECONDS
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 10 ]] || die "DEMO_SECONDS=$seconds: use a whole number of seconds, at least 10"
[[ "$rate" =~ ^[0-9]+$ && "$rate" -ge 1 ]] || die "DEMO_RATE=$rate: use a positive whole number"
command -v go >/dev/null || die "go is not on PATH: install Go (see go.mod for the version)"

say "removing ./$out_dir"
rm -rf "$out_dir"

say "checking for PostgreSQL 15"
bash scripts/ensure-postgres.sh
psql=$pg_bin/psql
[[ -x "$psql" ]] || psql=$(command -v psql) || die "psql not found in $pg_bin or on PATH: install postgresql-client-15"

say "building bin/cdc2s3"
go build -o "$bin" ./cmd/cdc2s3
echo "    $("$bin" --version)"

say "starting a throwaway PostgreSQL 15 cluster"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cdc2s3-demo.XXXXXX")
chmod 700 "$tmp"
port=$(free_port)
pg_cluster_init "$tmp" "$port" <<EOF
max_replication_slots = 4
max_wal_senders = 4
fsync = off
full_page_writes = off
shared_buffers = 32MB
EOF
pg_cluster_start "$tmp"
pg_running=1
dsn="host=$tmp port=$port user=postgres dbname=postgres sslmode=disable"
echo "    $("$psql" "$dsn" -Atqc 'SELECT version()' | cut -d, -f1), wal_level = $("$psql" "$dsn" -Atqc 'SHOW wal_level')"
echo "    source: $dsn"

say "starting: cdc2s3 generate --rate $rate"
"$bin" generate --source "$dsn" --rate "$rate" >"$tmp/generate.out" 2>"$tmp/generate.log" &
gen_pid=$!
# generate creates and seeds the demo schema in one transaction; start the
# daemon once it is there, so the full load has rows to copy.
for _ in $(seq 150); do
	alive "cdc2s3 generate" "$gen_pid" "$tmp/generate.log"
	[[ "$("$psql" "$dsn" -Atqc "SELECT to_regclass('demo.events') IS NOT NULL")" == t ]] && break
	sleep 0.2
done
[[ "$("$psql" "$dsn" -Atqc "SELECT to_regclass('demo.events') IS NOT NULL")" == t ]] ||
	die "generate did not create the demo schema within 30s"
echo "    demo schema ready: $("$psql" "$dsn" -Atqc "SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'demo' AND c.relkind IN ('r', 'p') AND NOT c.relispartition")"

say "starting: cdc2s3 run --dest ./$out_dir --flush-interval 5s (for ${seconds}s)"
"$bin" run --source "$dsn" --dest "./$out_dir" --flush-interval 5s >"$tmp/run.out" 2>"$tmp/run.log" &
run_pid=$!
for ((t = 1; t <= seconds; t++)); do
	sleep 1
	alive "cdc2s3 run" "$run_pid" "$tmp/run.log"
	alive "cdc2s3 generate" "$gen_pid" "$tmp/generate.log"
	if ((t % 5 == 0)); then
		printf '    %3ds: %d LOAD and %d CDC files in ./%s\n' "$t" "$(count_files 'LOAD*.parquet')" "$(count_files 'CDC-*.parquet')" "$out_dir"
	fi
done

say "stopping both with SIGTERM"
stop_proc "cdc2s3 generate" "$gen_pid" 30 "$tmp/generate.log"
gen_pid=""
echo "    $(cat "$tmp/generate.out")"
# Give the daemon a moment to receive the last transactions, so that the
# output matches the source; a stop at any moment would also be consistent.
sleep 1
stop_proc "cdc2s3 run" "$run_pid" 60 "$tmp/run.log"
run_pid=""
grep -E 'full load done|level=WARN|level=ERROR|msg=stopped' "$tmp/run.log" | sed 's/^/    run: /' || true
echo "    run: $(grep -c 'msg=uploaded' "$tmp/run.log" || true) uploads"

orders=$("$psql" "$dsn" -Atqc 'SELECT count(*) FROM demo.orders')
customers=$("$psql" "$dsn" -Atqc 'SELECT count(*) FROM demo.customers')
echo "    source now holds $customers rows in demo.customers and $orders rows in demo.orders"

say "cdc2s3 inspect --dest ./$out_dir"
"$bin" inspect --dest "./$out_dir"

say "cdc2s3 catalog --dest ./$out_dir --format duckdb > ./$out_dir.duckdb.sql"
"$bin" catalog --dest "./$out_dir" --format duckdb >"$repo/$out_dir.duckdb.sql"
echo "    $(grep -c '^CREATE OR REPLACE VIEW' "$repo/$out_dir.duckdb.sql") views, one per table folder: its current state by the merge rule"
cat <<EOF
Every table folder is a plain set of Parquet files: the full load (LOAD*.parquet)
and one file per flush of changes (CDC-<first position>-<last position>.parquet),
every row tagged with Op (I/U/D/T, L/R for reloads), _cdc_commit_ts, _cdc_lsn and _cdc_seq.

The catalog script makes every source table a DuckDB view of its current state
(demo.orders should count the $orders rows the source held at the stop):

duckdb -c ".read $out_dir.duckdb.sql" -c "SELECT count(*) AS current_orders FROM demo.orders"

Athena and Spark: cdc2s3 catalog --format athena|spark (docs/analysts.md).
Layout, types and the merge rule: docs/output-format.md.
EOF
if command -v duckdb >/dev/null; then
	say "running that query with $(command -v duckdb)"
	(cd "$repo" && duckdb -c ".read $out_dir.duckdb.sql" -c "SELECT count(*) AS current_orders FROM demo.orders") ||
		echo "demo: the DuckDB query failed (the demo itself succeeded)" >&2
fi

say "cdc2s3 validate --source <the demo's source> --dest ./$out_dir"
if "$bin" validate --source "$dsn" --dest "./$out_dir" 2>"$tmp/validate.log"; then
	echo "    every table of ./$out_dir equals the source"
else
	rc=$?
	show_log "cdc2s3 validate" "$tmp/validate.log"
	die "cdc2s3 validate exited with status $rc: the output differs from the source (1) or could not be compared (2, 3)"
fi

echo
echo "demo: done in $((SECONDS - start))s"
