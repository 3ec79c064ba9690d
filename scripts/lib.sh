# lib.sh: helpers shared by scripts/demo.sh and scripts/bench.sh. Source it
# after setting `script` (the name in messages) and `pg_bin`.

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\n%s: FAILED: %s\n' "${script%.sh}" "$*" >&2
	exit 1
}

# as_pg runs a PostgreSQL server program as the postgres OS user when we
# are root (initdb and postgres refuse root), else as ourselves.
as_pg() {
	if [[ $EUID -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# show_log prints the last lines of a log file, indented.
show_log() {
	local name=$1 file=$2
	[[ -s "$file" ]] || return 0
	printf '\n--- last lines of %s (%s) ---\n' "$name" "$file" >&2
	tail -n 25 "$file" | sed 's/^/    /' >&2
}

# kill_pid stops one of our processes during cleanup: SIGTERM, up to 10 s
# to exit, then SIGKILL. A process already gone is fine.
kill_pid() {
	local pid=$1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# free_port picks a port nothing listens on. The demo's cluster listens
# only on a unix socket in a private dir, where the port merely names the
# socket; the bench's also listens on 127.0.0.1 (pg_cluster_tcp) on the
# same port, so it must be free there.
free_port() {
	local port
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found"
}

# pg_cluster_init DIR PORT: initdb a throwaway cluster in DIR/data that
# accepts only unix-socket connections in DIR (trust, replication too),
# with wal_level = logical; settings read from stdin are appended to its
# postgresql.conf. DIR must be private; as root it is given to postgres.
pg_cluster_init() {
	local dir=$1 port=$2
	if [[ $EUID -eq 0 ]]; then
		id -u postgres >/dev/null 2>&1 || die "the postgres OS user is missing (scripts/ensure-postgres.sh creates it)"
		chown postgres: "$dir"
	fi
	# Run the server programs from DIR: the postgres user may not be
	# allowed into the current directory.
	(cd "$dir" && as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
		--no-sync --no-instructions >"$dir/initdb.log" 2>&1) || {
		show_log initdb "$dir/initdb.log"
		die "initdb failed"
	}
	printf '# written by scripts/%s: the unix socket, trusted\nlocal   all          all   trust\nlocal   replication  all   trust\n' "$script" |
		as_pg tee "$dir/data/pg_hba.conf" >/dev/null
	{
		printf '\n# written by scripts/%s\n' "$script"
		printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %s\nwal_level = logical\n" "$dir" "$port"
		cat
	} | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
}

# pg_cluster_tcp DIR: after pg_cluster_init, make the cluster also listen
# on 127.0.0.1 (the port stays the same), where every connection needs the
# password (scram-sha-256) that pg_cluster_password sets once it runs.
pg_cluster_tcp() {
	printf '# 127.0.0.1 with a password\nhost    all          all   127.0.0.1/32   scram-sha-256\nhost    replication  all   127.0.0.1/32   scram-sha-256\n' |
		as_pg tee -a "$1/data/pg_hba.conf" >/dev/null
	printf "listen_addresses = '127.0.0.1'\n" | as_pg tee -a "$1/data/postgresql.conf" >/dev/null
}

# pg_cluster_password DIR PORT PASSWORD sets the postgres role's password
# over the Unix socket (on stdin, so it is in no process's arguments).
pg_cluster_password() {
	printf "ALTER ROLE postgres PASSWORD '%s'\n" "$3" |
		"$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U postgres -d postgres -f - >/dev/null ||
		die "could not set the postgres role's password"
}

# pg_cluster_start DIR and pg_cluster_stop DIR start and stop it.
pg_cluster_start() {
	(cd "$1" && as_pg "$pg_bin/pg_ctl" -D "$1/data" -l "$1/postgres.log" -w -t 60 start >/dev/null) ||
		die "PostgreSQL did not start"
}
pg_cluster_stop() {
	(cd "$1" && as_pg "$pg_bin/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null 2>&1) ||
		(cd "$1" && as_pg "$pg_bin/pg_ctl" -D "$1/data" -m immediate -w -t 30 stop >/dev/null 2>&1)
}
