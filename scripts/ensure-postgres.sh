#!/usr/bin/env bash
# ensure-postgres.sh makes sure the PostgreSQL 15 server programs that the
# demo (scripts/demo.sh) and the integration tests (internal/testenv) start
# are installed:
#
#   ${CDC2S3_PG_BINDIR:-/usr/lib/postgresql/15/bin}/{initdb,postgres,pg_ctl}
#
# When they are missing and CDC2S3_PG_BINDIR is not set, it installs
# Debian's postgresql-15 package with apt-get (as root, or through sudo).
# It only installs programs: the throwaway clusters are made by the demo and
# the tests themselves. Debian's package may also create and start its own
# "main" cluster on port 5432; cdc2s3 does not use it.
#
# initdb and postgres refuse to run as root, so when run as root it also
# makes sure the "postgres" OS user exists (the package creates it).
# It is idempotent and prints nothing but one line when all is in place.
set -euo pipefail

default_bin_dir=/usr/lib/postgresql/15/bin
bin_dir="${CDC2S3_PG_BINDIR:-$default_bin_dir}"

die() {
	printf 'ensure-postgres: %s\n' "$*" >&2
	exit 1
}

installed() {
	local prog
	for prog in initdb postgres pg_ctl; do
		[[ -x "$bin_dir/$prog" ]] || return 1
	done
}

# as_root runs a command as root: directly, or through sudo.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root to run: $* (run as root, install sudo, or install PostgreSQL 15 yourself)"
	fi
}

if ! installed; then
	if [[ -n "${CDC2S3_PG_BINDIR:-}" ]]; then
		die "CDC2S3_PG_BINDIR=$CDC2S3_PG_BINDIR has no initdb, postgres and pg_ctl: point it at a PostgreSQL 15 bin directory, or unset it to install Debian's postgresql-15"
	fi
	command -v apt-get >/dev/null ||
		die "PostgreSQL 15 is not in $bin_dir and apt-get is not available: install the PostgreSQL 15 server and set CDC2S3_PG_BINDIR to its bin directory"
	echo "ensure-postgres: installing postgresql-15 with apt-get (PostgreSQL 15 is not in $bin_dir)"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq
	if ! apt-cache show postgresql-15 >/dev/null 2>&1; then
		die "no postgresql-15 package in the configured apt sources (Debian 12 has it; elsewhere add https://apt.postgresql.org or install PostgreSQL 15 and set CDC2S3_PG_BINDIR)"
	fi
	as_root apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
	installed || die "postgresql-15 is installed but $bin_dir still lacks initdb, postgres or pg_ctl"
fi

if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
	# initdb and postgres refuse root; the demo and the tests run them as
	# this user.
	echo "ensure-postgres: creating the postgres OS user"
	useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
fi

echo "ensure-postgres: $("$bin_dir/postgres" --version) in $bin_dir"
