#!/usr/bin/env bash
# Measures the service's write unavailability during a whole promotion under load (issue 6):
# runs the live test tests/promote_run_live.rs::a_whole_promotion_under_load N times per flavour
# (release build) and summarises the lines it prints. The unavailability is from the service's
# last acknowledged write on the old primary to its first on the new server (the fence, the
# catch-up and delta, the promotion and the writes hook are in between).
#
#   scripts/bench-promotion.sh [--runs N] [--no-docs]     (default 10 runs; rewrites the
#                                                          bench-promotion block of docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=10 DOCS=1
while [ "$#" -gt 0 ]; do
    case "$1" in
        --runs) shift; RUNS="$1" ;;
        --no-docs) DOCS=0 ;;
        *) echo "bench-promotion: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for i in $(seq "$RUNS"); do
    cargo test --locked --release --test promote_run_live a_whole_promotion_under_load -- --nocapture --test-threads=1 2>/dev/null \
        | grep 'writes acknowledged' >> "$log"
done
python3 - "$log" "$DOCS" "$RUNS" <<'PY'
import re, sys, statistics, datetime, os
lines = open(sys.argv[1]).read().splitlines()
rows = {}
for l in lines:
    m = re.search(r"(\w+): (\d+) writes acknowledged at (\d+)/s; unavailable (\d+) ms.*longest gap (\d+) ms; whole run (\d+) ms", l)
    if m:
        rows.setdefault(m.group(1), []).append([int(x) for x in m.groups()[1:]])
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = ["<!-- bench-promotion -->",
       f"{datetime.date.today()}, {os.cpu_count()} cores (`{cpu}`), {sys.argv[3]} runs per flavour, release build:", "",
       "| flavour | writes/s (median) | unavailability min / median / max | other app's longest gap (max) | whole run (median) |",
       "| --- | --- | --- | --- | --- |"]
for f, r in rows.items():
    un = sorted(x[2] for x in r)
    out.append(f"| {f} | {statistics.median(x[1] for x in r):.0f} | {un[0]} / {statistics.median(un):.0f} / {un[-1]} ms | {max(x[3] for x in r)} ms | {statistics.median(x[4] for x in r):.0f} ms |")
out += ["", "Target: at most 2 s of write unavailability.", "<!-- /bench-promotion -->"]
block = "\n".join(out)
print(block)
if sys.argv[2] == "1":
    p = "docs/benchmarks.md"
    doc = open(p).read()
    pat = re.compile(r"<!-- bench-promotion -->.*?<!-- /bench-promotion -->", re.S)
    doc = pat.sub(lambda _: block, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
    open(p, "w").write(doc)
PY
