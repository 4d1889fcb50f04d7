#!/usr/bin/env bash
# Benchmarks the app's outage when a guided session's cut breaks it (issue 5): from the app's
# first denied statement to its first successful retry after privfence restored the account,
# with the number of statements it saw fail (benches/outage.rs; method in docs/benchmarks.md).
#
#   scripts/bench-outage.sh [--smoke] [--runs N] [--flavour mariadb|mysql|both] [--no-docs]
#
#   --smoke     what CI runs: 3 runs per flavour, docs left alone; a missed timing target is
#               reported but does not fail the run (a wrong verdict or a set-up error does).
#   (default)   20 runs per flavour; rewrites the results in docs/benchmarks.md (between the
#               bench-outage markers).
# Exit status: 0 targets met (median <= 300 ms, max <= 1 s), 1 missed, 2 set-up error.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=20 FLAVOUR=both DOCS=1 SMOKE=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --smoke) RUNS=3 DOCS=0 SMOKE=1 ;;
        --runs) shift; RUNS="$1" ;;
        --flavour) shift; FLAVOUR="$1" ;;
        --no-docs) DOCS=0 ;;
        *) echo "bench-outage: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo bench --locked --bench outage -- --runs "$RUNS" --flavour "$FLAVOUR" | tee "$out" || status=$?
[ "$status" -le 1 ] || exit 2
if [ "$SMOKE" = 1 ] && [ "$status" = 1 ]; then
    echo "bench-outage: timing targets missed in the smoke run (reported, not failed: timings on a shared machine vary)" >&2
    status=0
fi
if [ "$DOCS" = 1 ]; then
    python3 - "$out" <<'PY'
import re, sys
new = open(sys.argv[1]).read()
doc_path = "docs/benchmarks.md"
doc = open(doc_path).read()
for m in re.finditer(r"<!-- bench-outage (\w+) -->.*?<!-- /bench-outage \1 -->", new, re.S):
    block, name = m.group(0), m.group(1)
    pat = re.compile(r"<!-- bench-outage %s -->.*?<!-- /bench-outage %s -->" % (name, name), re.S)
    doc = pat.sub(lambda _: block, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
open(doc_path, "w").write(doc)
PY
fi
exit "$status"
