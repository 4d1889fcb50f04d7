#!/usr/bin/env bash
# Benchmarks sync-back's lag (issue 16; method and results in docs/benchmarks.md): on a fresh
# promoted primary/replica sandbox per flavour, `privfence sync-back` runs while the service
# inserts rows on the new server at a steady rate; the old copy is polled every 10 ms and each
# row's lag is its arrival there minus its NOW(6) on the new server.
#
#   scripts/bench-syncback.sh [--rate ROWS_PER_S] [--seconds N] [--flavour mariadb|mysql|both] [--mix]
#
#   --rate     row changes a second on the new server (default 2000; 20 rows per INSERT).
#   --seconds  how long the writers run (default 20).
#   --flavour  mariadb, mysql or both (default both; one after the other, never at once).
#   --mix      inserts, updates and deletes (50/30/20 by statement, 20 rows each) instead of inserts
#              only; lag timed on the inserted and updated rows' arrival, the copy compared row by
#              row afterwards (bench_lag_mixed_*).
#
# The test binary is the debug build (`cargo test --test syncback_live bench_lag_* --ignored`);
# it fails when a row never arrives or the p99 lag is 1 s or more. Results: one line per flavour
# on stdout (flavour, rows written, seconds, rows arrived, p50/p99/max lag in ms).
set -euo pipefail
rate=2000 seconds=20 flavour=both mix=
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) rate="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --flavour) flavour="$2"; shift 2 ;;
        --mix) mix=mixed_; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
case "$flavour" in
    both) tests=("bench_lag_${mix}mariadb" "bench_lag_${mix}mysql") ;;
    mariadb|mysql) tests=("bench_lag_${mix}$flavour") ;;
    *) echo "--flavour: mariadb, mysql or both" >&2; exit 2 ;;
esac
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) CPU(s), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# flavour rows seconds arrived p50_ms p99_ms max_ms"
status=0
for t in "${tests[@]}"; do
    out=$(mktemp)
    PRIVFENCE_BENCH_ROWS_PER_S="$rate" PRIVFENCE_BENCH_SECONDS="$seconds" PRIVFENCE_BENCH_OUT="$out" \
        cargo test --quiet --test syncback_live "$t" -- --ignored --exact --nocapture >/dev/null 2>&1 || status=1
    cat "$out"
    rm -f "$out"
done
exit "$status"
