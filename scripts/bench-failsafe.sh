#!/usr/bin/env bash
# Benchmarks the server-side fail-safe (issue 13): from privfence's death (kill -9 in the middle
# of a watch) to the account restored by the server alone, on the primary and on the replica
# (benches/failsafe.rs; method in docs/benchmarks.md).
#
#   scripts/bench-failsafe.sh [--smoke] [--runs N] [--flavour mariadb|mysql|both] [--no-docs]
#
#   --smoke     3 runs per flavour, docs left alone.
#   (default)   10 runs per flavour; rewrites the results in docs/benchmarks.md (between the
#               bench-failsafe markers).
# Built with the dev profile (the time is the server's: the heartbeat's silence and the event).
# Exit status: 0 target met (max <= failsafe-after + 2 s), 1 missed, 2 set-up error.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=10 FLAVOUR=both DOCS=1
while [ "$#" -gt 0 ]; do
    case "$1" in
        --smoke) RUNS=3 DOCS=0 ;;
        --runs) shift; RUNS="$1" ;;
        --flavour) shift; FLAVOUR="$1" ;;
        --no-docs) DOCS=0 ;;
        *) echo "bench-failsafe: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo bench --locked --profile dev --bench failsafe -- --runs "$RUNS" --flavour "$FLAVOUR" | tee "$out" || status=$?
[ "$status" -le 1 ] || exit 2
if [ "$DOCS" = 1 ]; then
    python3 - "$out" <<'PY'
import re, sys
new = open(sys.argv[1]).read()
doc_path = "docs/benchmarks.md"
doc = open(doc_path).read()
for m in re.finditer(r"<!-- bench-failsafe (\w+) -->.*?<!-- /bench-failsafe \1 -->", new, re.S):
    block, name = m.group(0), m.group(1)
    pat = re.compile(r"<!-- bench-failsafe %s -->.*?<!-- /bench-failsafe %s -->" % (name, name), re.S)
    doc = pat.sub(lambda _: block, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
open(doc_path, "w").write(doc)
PY
fi
exit "$status"
