#!/usr/bin/env bash
# The longer run of the differential test (tests/differential.rs, issue 11): random grant,
# role, revoke, default-role, PUBLIC/mandatory-role and anonymous-row sequences applied to real
# sandbox servers of both flavours, checking `inventory --verify` against SHOW GRANTS and
# `access` against real logins after every statement. A disagreement fails with the shrunk
# statement sequence that shows it.
#
#   scripts/differential.sh [--cases N] [--steps N] [--seed N] [--flavour mariadb|mysql|both]
#
#   --cases N    cases per flavour (default 30); each case is a fresh set of schemas, accounts
#                and roles
#   --steps N    statements per case (default 20)
#   --seed N     the run's seed (default: derived from the time, printed; replay with it)
#   --flavour    mariadb, mysql or both (default both; the two run side by side)
#   --keep-going survey mode: on a disagreement print it (unshrunk, with the time it was
#                found) and go on with the next case; fails at the end if any was found
#   --keep-going survey mode: on a disagreement print it (unshrunk, with the time it was
#                found) and go on with the next case; fails at the end if any was found
#
# CI runs the short fixed-seed run with the test suite (`cargo test --test differential`).
# Exit status: that of `cargo test` (0: no disagreement).
set -euo pipefail
cd "$(dirname "$0")/.."
cases=30 steps=20 seed=$(( $(date +%s) % 1000000007 )) filter=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cases) cases=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --keep-going) export PRIVFENCE_DIFF_KEEP_GOING=1; shift ;;
        --keep-going) export PRIVFENCE_DIFF_KEEP_GOING=1; shift ;;
        --flavour)
            case "$2" in
                mariadb) filter=mariadb_ ;;
                mysql) filter=mysql_ ;;
                both) filter="" ;;
                *) echo "unknown flavour: $2" >&2; exit 2 ;;
            esac
            shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
echo "differential: seed $seed, $cases cases of $steps statements per flavour" >&2
PRIVFENCE_DIFF_SEED=$seed PRIVFENCE_DIFF_CASES=$cases PRIVFENCE_DIFF_STEPS=$steps \
    exec cargo test --test differential -- --test-threads=2 --nocapture $filter
