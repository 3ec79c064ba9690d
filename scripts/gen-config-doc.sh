#!/usr/bin/env bash
# gen-config-doc.sh writes the output of `cdc2s3 config defaults` into the
# yaml block of docs/configuration.md (TestConfigurationDoc checks they agree).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go run ./cmd/cdc2s3 config defaults >"$out"
python3 - "$out" <<'PY'
import sys
gen = open(sys.argv[1]).read()
path = "docs/configuration.md"
doc = open(path).read()
start = doc.index("```yaml\n# cdc2s3 settings") + len("```yaml\n")
end = doc.index("```", start)
open(path, "w").write(doc[:start] + gen + doc[end:])
PY
