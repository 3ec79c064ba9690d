#!/usr/bin/env bash
# tools.sh builds the external programs the integration tests run, into the
# same cache directory that internal/testenv uses:
#
#   ${CDC2S3_TOOLS_DIR:-$HOME/.cache/cdc2s3/tools}/bin/
#
# It is idempotent: a tool already built at the pinned version is kept.
# Keep VERSITYGW_VERSION in step with internal/testenv/s3.go.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0

tools_dir="${CDC2S3_TOOLS_DIR:-${HOME:?HOME is not set}/.cache/cdc2s3/tools}"
bin_dir="$tools_dir/bin"
mkdir -p "$bin_dir"

# The Go helper writes the same stamp file and takes the same lock (flock on
# .lock), so a test run and this script never build at the same time.
stamp="$bin_dir/versitygw.version"
exec 9>"$tools_dir/.lock"
flock 9

if [[ -x "$bin_dir/versitygw" && -f "$stamp" && "$(cat "$stamp")" == "$VERSITYGW_VERSION" ]]; then
	echo "versitygw $VERSITYGW_VERSION already in $bin_dir"
	exit 0
fi

echo "building versitygw $VERSITYGW_VERSION into $bin_dir (takes a few minutes)"
# Build outside the repository so its go.mod does not constrain versitygw's.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
mv -f "$tmp/versitygw" "$bin_dir/versitygw"
echo "$VERSITYGW_VERSION" >"$stamp"
echo "versitygw $VERSITYGW_VERSION ready in $bin_dir"
