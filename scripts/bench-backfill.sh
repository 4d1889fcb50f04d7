#!/usr/bin/env bash
# The backfill and verify benchmark (issue 15): runs the ignored test tests/bench_backfill.rs on
# both flavours (two independent sandbox servers each) and summarises its BENCH lines:
# `privfence backfill` vs `mysqldump --no-create-info --insert-ignore | mysql`, `privfence verify`
# vs reading both tables in full, peak RSS of each.
#
#   scripts/bench-backfill.sh [--rows N] [--smoke] [--debug] [--no-docs]
#     default: 1,000,000 rows, release build, rewrites the bench-backfill block of docs/benchmarks.md
#     --smoke: 20,000 rows, debug build, docs untouched (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=1000000 DOCS=1 PROFILE=--release
while [ "$#" -gt 0 ]; do
    case "$1" in
        --rows) shift; ROWS="$1" ;;
        --smoke) ROWS=20000 DOCS=0 PROFILE= ;;
        --debug) PROFILE= ;;
        --no-docs) DOCS=0 ;;
        *) echo "bench-backfill: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PRIVFENCE_BENCH_ROWS="$ROWS" cargo test --locked $PROFILE --test bench_backfill -- --ignored --nocapture --test-threads=1 2>&1 \
    | tee -a /dev/stderr | grep '^test .*BENCH\|^BENCH' | sed 's/^.*BENCH/BENCH/' > "$log"
[ -s "$log" ] || { echo "bench-backfill: no results" >&2; exit 1; }
python3 - "$log" "$DOCS" "${PROFILE:---debug}" <<'PY'
import re, sys, datetime, os
rows = []
for l in open(sys.argv[1]):
    m = re.search(r"BENCH (\w+): rows (\d+); backfill ([\d.]+) s copy ([\d.]+) s peak (\d+) MB; dump\|load ([\d.]+) s peak (\d+) MB; verify ([\d.]+) s peak (\d+) MB; full read ([\d.]+) s", l)
    if m:
        rows.append(m.groups())
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
build = "release" if sys.argv[3] == "--release" else "debug"
out = ["<!-- bench-backfill -->",
       f"{datetime.date.today()}, {os.cpu_count()} cores (`{cpu}`, shared), {build} build, rows of about 100 bytes on loopback:", "",
       "| flavour | rows | backfill (with its verify) | copy alone | dump \\| load | ratio (target ≤ 1.5): all / copy | verify | full read of both | ratio (target ≤ 2) | peak RSS backfill / verify / dump |",
       "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for f, n, bt, ct, brss, dt, drss, vt, vrss, rt in rows:
    out.append(f"| {f} | {int(n):,} | {float(bt):.1f} s | {float(ct):.1f} s | {float(dt):.1f} s | {float(bt)/float(dt):.2f} / {float(ct)/float(dt):.2f} | {float(vt):.1f} s | {float(rt):.1f} s | {float(vt)/max(float(rt),0.01):.2f} | {brss} / {vrss} / {drss} MB |")
out += ["<!-- /bench-backfill -->"]
block = "\n".join(out)
print(block)
if sys.argv[2] == "1":
    p = "docs/benchmarks.md"
    doc = open(p).read()
    pat = re.compile(r"<!-- bench-backfill -->.*?<!-- /bench-backfill -->", re.S)
    doc = pat.sub(lambda _: block, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
    open(p, "w").write(doc)
PY
