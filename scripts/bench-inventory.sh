#!/usr/bin/env bash
# Benchmarks `privfence inventory` against the raw cost of reading the grant tables and against
# Percona's pt-show-grants, on a sandbox server loaded with many accounts and grants (issue 2 §6;
# method and results in docs/benchmarks.md).
#
#   scripts/bench-inventory.sh [--smoke] [--flavour mariadb|mysql|both] [--runs N]
#                              [--slow-runs N] [--no-build | --binary PATH] [--no-docs]
#                              [--keep | --load-only] [--accounts N]
#
#   --smoke      what CI runs: 200 accounts and 2,000 table grants, one timed run of each
#                command, docs left alone. Fails when privfence inventory fails, reports counts
#                that differ from the grant tables, disagrees with SHOW GRANTS (--verify), or
#                takes more than 10x the raw read; or when access, audit, plan or session start
#                fails or finds nothing (their multiples are printed, not enforced).
#   (default)    10,000 accounts and 100,000 table grants; rewrites this machine's results for
#                each flavour run in docs/benchmarks.md (between its bench-inventory markers).
#   --flavour    mariadb, mysql or both (default both; one after the other, never at once).
#   --runs N     timed runs of the fast commands (default 10; smoke 1).
#   --slow-runs N  timed runs of `--verify`, `--verify=full` and pt-show-grants (default 3;
#                smoke 1). 0 leaves them out (untimed checks included): each SHOW GRANTS walks
#                all the server's table grants, so at full size `--verify=full` and
#                pt-show-grants take minutes per run on a busy machine.
#   --accounts N   N accounts and 10*N table grants instead of 10,000 (a multiple of 20; its
#                results go to their own block in docs/benchmarks.md).
#   --no-build   use the existing target/release/privfence instead of `cargo build --release`.
#   --binary PATH  use this privfence binary: a saved release build (PF_REV=... names its
#                revision), or a debug build for server-bound experiments (its timings are not
#                comparable). Implies --no-build.
#   --no-docs    print the results without touching docs/benchmarks.md.
#   --keep       leave the loaded sandbox(es) running for profiling (their folders are printed;
#                remove each with `target/release/privfence sandbox down --dir DIR`).
#   --load-only  load and check the data, then stop: no timings, no docs; implies --keep.
#
# Every command connects over TCP to the same sandbox server with the same option file (the
# sandbox's client.cnf, with the admin account). Each command runs once untimed first (output
# kept and checked), then `hyperfine` times it with output to /dev/null (a date loop when
# hyperfine cannot be installed). Needs: cargo, jq, hyperfine, percona-toolkit (installed with
# apt when missing), and the servers (the sandbox installs them when missing).
#
# Exit status: 0 all checks passed; 1 a check failed (wrong counts, a failing command, or in
# smoke mode privfence over 10x the raw read); 2 usage or set-up error.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

log() { printf 'bench-inventory: %s\n' "$*" >&2; }
die() { printf 'bench-inventory: %s\n' "$*" >&2; exit 2; }

SMOKE=0 FLAVOURS="mariadb mysql" RUNS="" SLOW_RUNS="" ACCOUNTS_ARG="" BUILD=1 DOCS=1 KEEP=0 LOAD_ONLY=0 BINARY=target/release/privfence
while [ "$#" -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --flavour) [ "$#" -ge 2 ] || die "--flavour needs a value"; shift
            case "$1" in mariadb | mysql) FLAVOURS="$1" ;; both) FLAVOURS="mariadb mysql" ;;
                *) die "unknown flavour '$1' (expected mariadb, mysql or both)" ;; esac ;;
        --flavour=*) set -- --flavour "${1#*=}" "${@:2}"; continue ;;
        --runs) [ "$#" -ge 2 ] || die "--runs needs a value"; shift; RUNS="$1" ;;
        --slow-runs) [ "$#" -ge 2 ] || die "--slow-runs needs a value"; shift; SLOW_RUNS="$1" ;;
        --accounts) [ "$#" -ge 2 ] || die "--accounts needs a value"; shift; ACCOUNTS_ARG="$1" ;;
        --no-build) BUILD=0 ;;
        --binary) [ "$#" -ge 2 ] || die "--binary needs a path"; shift; BINARY="$1" BUILD=0 ;;
        --no-docs) DOCS=0 ;;
        --keep) KEEP=1 ;;
        --load-only) LOAD_ONLY=1 KEEP=1 DOCS=0 ;;
        -h | --help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

# Data sizes: accounts (a multiple of 20), schemas, tables per schema. 10 table grants per
# account on average; schemas * tables must be coprime with 13 and at least 30 (see load.sql).
if [ "$SMOKE" = 1 ]; then
    ACCOUNTS=200 SCHEMAS=5 TABLES=10
    RUNS="${RUNS:-1}" SLOW_RUNS="${SLOW_RUNS:-1}" DOCS=0
else
    ACCOUNTS=10000 SCHEMAS=50 TABLES=20
    RUNS="${RUNS:-10}" SLOW_RUNS="${SLOW_RUNS:-3}"
fi
if [ -n "$ACCOUNTS_ARG" ]; then
    case "$ACCOUNTS_ARG" in '' | *[!0-9]*) die "--accounts takes a number" ;; esac
    [ $((ACCOUNTS_ARG % 20)) -eq 0 ] && [ "$ACCOUNTS_ARG" -ge 100 ] || die "--accounts must be a multiple of 20, at least 100"
    ACCOUNTS="$ACCOUNTS_ARG"
fi
GRANTS=$((ACCOUNTS * 10))
SMOKE_MAX_RATIO=10
TARGET_RATIO=2

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    log "installing $* with apt"
    as_root apt-get update >&2 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# --- tools ---------------------------------------------------------------------------------
command -v jq >/dev/null || apt_install jq || die "jq is needed and could not be installed"
HYPERFINE=1
if ! command -v hyperfine >/dev/null; then
    apt_install hyperfine || true
    command -v hyperfine >/dev/null || { HYPERFINE=0; log "hyperfine unavailable: timing with a date loop"; }
fi
command -v pt-show-grants >/dev/null || scripts/install-servers.sh percona >/dev/null \
    || die "pt-show-grants is needed: scripts/install-servers.sh percona failed"
if [ "$BUILD" = 1 ]; then
    log "cargo build --release --locked"
    cargo build --release --locked >&2 || die "cargo build --release failed"
fi
[ -x "$BINARY" ] || die "$BINARY is missing; run without --no-build"
# The revision the binary was built from (HEAD may move while the benchmark runs; PF_REV
# names it for a --binary built elsewhere).
REV="${PF_REV:-}"
[ -n "$REV" ] || REV="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+local changes')"

# A short path: the sandbox's Unix socket path must stay under 100 bytes.
WORK="$(mktemp -d /tmp/pf-bench.XXXXXX)"
# A private copy of the binary, so that a rebuild in the work tree cannot change it mid-run.
PF="$WORK/privfence"
cp "$BINARY" "$PF"
STARTED=()
cleanup() {
    local d
    for d in "${STARTED[@]+"${STARTED[@]}"}"; do
        [ -n "$d" ] || continue
        "$PF" sandbox down --dir "$d" >/dev/null 2>&1 || log "could not remove the sandbox in $d"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILURES=()
fail() { log "CHECK FAILED: $*"; FAILURES+=("$*"); }

# --- timing --------------------------------------------------------------------------------
# time_cmd RUNS IGNORE_EXIT CMD...: times CMD (output to /dev/null); sets TIMES="median min max".
time_cmd() {
    local runs="$1" ignore="$2"; shift 2
    if [ "$HYPERFINE" = 1 ]; then
        local args=(--runs "$runs" --warmup 0 -N --style basic --export-json "$WORK/hf.json")
        [ "$ignore" = 1 ] && args+=(--ignore-failure)
        hyperfine "${args[@]}" "$(printf '%q ' "$@")" >&2 || return 1
        TIMES="$(jq -r '.results[0] | "\(.median) \(.min) \(.max)"' "$WORK/hf.json")"
    else
        local i t0 t1 list=""
        for ((i = 0; i < runs; i++)); do
            t0="$(date +%s.%N)"
            "$@" >/dev/null 2>&1 || [ "$ignore" = 1 ] || return 1
            t1="$(date +%s.%N)"
            list+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')"$'\n'
        done
        TIMES="$(printf '%s' "$list" | sort -g | awk '{ v[NR] = $1 } END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }')"
    fi
}

# --- loading -------------------------------------------------------------------------------
# The SQL that creates the tables and the sequence, then load.sql, a flavour-specific
# monitoring grant, and finish.sql (see scripts/bench/load.sql for what it makes).
load_sql() {
    local flavour="$1" s t
    local table=global_priv
    [ "$flavour" = mysql ] && table=user
    echo "SET @accounts = $ACCOUNTS, @schemas = $SCHEMAS, @tables_per_schema = $TABLES, @account_table = '$table';"
    echo "SET SESSION sql_log_bin = 0;"
    for ((s = 1; s <= SCHEMAS; s++)); do
        printf 'CREATE DATABASE bench_s%02d;\n' "$s"
        for ((t = 1; t <= TABLES; t++)); do
            printf 'CREATE TABLE bench_s%02d.t%02d (id INT PRIMARY KEY, c1 INT, c2 VARCHAR(40));\n' "$s" "$t"
        done
    done
    echo "CREATE DATABASE bench_meta; USE bench_meta; CREATE TABLE seq (n INT PRIMARY KEY);"
    if [ "$flavour" = mariadb ]; then
        echo "INSERT INTO seq SELECT seq FROM seq_0_to_$((GRANTS - 1));"
    else
        echo "SET SESSION cte_max_recursion_depth = $((GRANTS + 1));"
        echo "INSERT INTO seq WITH RECURSIVE s (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < $((GRANTS - 1))) SELECT n FROM s;"
    fi
    cat scripts/bench/load.sql
    if [ "$flavour" = mariadb ]; then
        echo "GRANT SLAVE MONITOR ON *.* TO 'bench_tpl1'@'%';"
    else
        echo "GRANT BACKUP_ADMIN ON *.* TO 'bench_tpl1'@'%';"
    fi
    cat scripts/bench/finish.sql
}

# server_counts: accounts, tables_priv rows, rows with table privileges, mysql.db rows,
# columns_priv rows with privileges (tab-separated).
server_counts() {
    local table=global_priv
    [ "$FLAVOUR" = mysql ] && table=user
    client -N -B -e "SELECT (SELECT COUNT(*) FROM mysql.$table), (SELECT COUNT(*) FROM mysql.tables_priv),
        (SELECT COUNT(*) FROM mysql.tables_priv WHERE Table_priv <> ''), (SELECT COUNT(*) FROM mysql.db),
        (SELECT COUNT(*) FROM mysql.columns_priv WHERE Column_priv <> '')"
}

# --- one flavour ---------------------------------------------------------------------------
fmt_s() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r < 10 ? "%.2fx" : "%.0fx"), r }'; }
fmt_int() {
    case "$1" in
        '' | *[!0-9]*) printf '%s' "$1" ;;
        *) printf '%s' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' ;;
    esac
}
human_size() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576; else printf "%.0f KiB", b / 1024 }'; }

bench_flavour() {
    FLAVOUR="$1"
    local dir="$WORK/$FLAVOUR" t0 rc
    if [ "$KEEP" = 1 ]; then
        dir="$(mktemp -d /tmp/pf-bench-keep.XXXXXX)/$FLAVOUR"
    fi
    log "== $FLAVOUR: starting a sandbox in $dir"
    [ "$KEEP" = 1 ] || STARTED+=("$dir")
    "$PF" sandbox up --flavour "$FLAVOUR" --dir "$dir" >&2 || die "privfence sandbox up --flavour $FLAVOUR failed"
    CNF="$dir/primary/client.cnf"
    # The flavour's own client, exactly as Server::client_command runs it (MySQL through the
    # private root's dynamic loader).
    mapfile -t CLIENT < <(jq -r '.binaries | if .loader then .loader.path, "--library-path", .loader.library_path else empty end, .client' "$dir/sandbox.json")
    CLIENT+=("--defaults-file=$CNF")
    client() { "${CLIENT[@]}" "$@"; }

    local version base
    version="$(client -N -B -e 'SELECT VERSION()')"
    base="$(server_counts)"
    log "$FLAVOUR $version: loading $ACCOUNTS accounts and $GRANTS table grants"
    t0="$(date +%s.%N)"
    load_sql "$FLAVOUR" >"$WORK/load.sql"
    client <"$WORK/load.sql" >&2 || die "loading the benchmark data into $FLAVOUR failed"
    local load_s
    load_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    log "loaded in $load_s s"

    # Checks: the server holds what was generated, and privfence reports the same.
    local counts b_acc b_tp a_acc a_tp a_tpp a_db a_col
    counts="$(server_counts)"
    read -r b_acc b_tp _ _ _ <<<"$base"
    read -r a_acc a_tp a_tpp a_db a_col <<<"$counts"
    [ "$a_acc" -eq $((b_acc + ACCOUNTS)) ] || fail "$FLAVOUR: $a_acc accounts on the server, expected $((b_acc + ACCOUNTS))"
    [ "$a_tp" -eq $((b_tp + GRANTS)) ] || fail "$FLAVOUR: $a_tp mysql.tables_priv rows, expected $((b_tp + GRANTS))"

    local json="$WORK/inventory.json" pf_acc pf_tp pf_db pf_col
    rc=0
    "$PF" inventory --format json --defaults-file "$CNF" >"$json" 2>"$WORK/inventory.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$FLAVOUR: privfence inventory --format json exited with $rc: $(head -c 2000 "$WORK/inventory.err")"
        pf_acc=- pf_tp=- pf_db=- pf_col=-
    else
        read -r pf_acc pf_tp pf_db pf_col < <(jq -r '[(.accounts | length)] + ([ "table", "schema", "column" ] as $l
            | [.grants | group_by(.object.level) | map({ key: .[0].object.level, value: length }) | from_entries
               | .[$l[]] // 0]) | @tsv' "$json")
        [ "$pf_acc" = "$a_acc" ] || fail "$FLAVOUR: privfence reports $pf_acc accounts, the server has $a_acc"
        [ "$pf_tp" = "$a_tpp" ] || fail "$FLAVOUR: privfence reports $pf_tp table grants, mysql.tables_priv has $a_tpp rows with table privileges"
        [ "$pf_db" = "$a_db" ] || fail "$FLAVOUR: privfence reports $pf_db schema grants, mysql.db has $a_db rows"
        [ "$pf_col" = "$a_col" ] || fail "$FLAVOUR: privfence reports $pf_col column grants, mysql.columns_priv has $a_col rows"
        [ ! -s "$WORK/inventory.err" ] || log "privfence inventory said on stderr: $(head -c 1000 "$WORK/inventory.err")"
    fi
    if [ "$LOAD_ONLY" = 1 ]; then
        log "== $FLAVOUR: loaded and checked; the sandbox stays up in $dir (client.cnf: $CNF)"
        return
    fi
    local json_size
    json_size="$(stat -c %s "$json")"

    local verify_note="not run (--slow-runs 0)" verify_rc=0 pt_rc=0 pt_size=0 pt_lines="-"
    if [ "$SLOW_RUNS" -gt 0 ]; then
        "$PF" inventory --format json --verify --defaults-file "$CNF" >/dev/null 2>"$WORK/verify.err" || verify_rc=$?
        verify_note="$(grep -E '^(verify|VERIFY)' "$WORK/verify.err" | head -1 | sed 's/^verify: //' || true)"
        if [ "$verify_rc" -ne 0 ]; then
            fail "$FLAVOUR: privfence inventory --verify exited with $verify_rc: $(head -c 2000 "$WORK/verify.err")"
        fi
        pt-show-grants --defaults-file="$CNF" >"$WORK/pt.sql" 2>"$WORK/pt.err" || pt_rc=$?
        [ "$pt_rc" -eq 0 ] || fail "$FLAVOUR: pt-show-grants exited with $pt_rc: $(head -c 1000 "$WORK/pt.err")"
        pt_size="$(stat -c %s "$WORK/pt.sql")"
        pt_lines="$(grep -c '^-- Grants for ' "$WORK/pt.sql" || true)"
        [ ! -s "$WORK/pt.err" ] || log "pt-show-grants said on stderr: $(head -c 1000 "$WORK/pt.err")"
    fi

    # The other read commands: a policy whose service owns the tables of bench_s01 (about a
    # quarter of the accounts reach one of them), run once untimed and checked.
    local policy="$WORK/policy.toml" journal="$WORK/session-$FLAVOUR.journal" reports="$WORK/reports"
    cat >"$policy" <<'TOML'
[service.bench]
description = "the benchmark's service: the 20 tables of bench_s01"
tables = ["bench_s01.*"]
owners = ["'app_00000'@'%'"]
TOML
    local access_rc=0 access_n audit_rc=0 audit_n plan_rc=0 plan_account session_rc=0 session_n
    "$PF" access 'bench_s01.*' --format json --defaults-file "$CNF" >"$WORK/access.json" 2>"$WORK/access.err" || access_rc=$?
    [ "$access_rc" -eq 0 ] || fail "$FLAVOUR: privfence access exited with $access_rc: $(head -c 1000 "$WORK/access.err")"
    access_n="$(jq '.entries | length' "$WORK/access.json" 2>/dev/null || echo 0)"
    [ "$access_n" -gt 0 ] || fail "$FLAVOUR: privfence access found no one who can touch bench_s01"
    # The plan's account: the first one that reaches bench_s01 through table grants only.
    plan_account="$(jq -r '[.entries | group_by(.account)[] | select(all(.via.kind == "table") and .[0].account.user != "app_00000")
        | .[0].account][0] | "\u0027\(.user)\u0027@\u0027\(.host)\u0027"' "$WORK/access.json" 2>/dev/null || true)"
    "$PF" audit --policy "$policy" --out "$reports" --format json --defaults-file "$CNF" >"$WORK/audit.json" 2>"$WORK/audit.err" || audit_rc=$?
    # 1 is drift found: expected here, every account but the owner is unexpected access.
    [ "$audit_rc" -le 1 ] || fail "$FLAVOUR: privfence audit exited with $audit_rc: $(head -c 1000 "$WORK/audit.err")"
    audit_n="$(jq '[.servers[].findings | length] | add' "$WORK/audit.json" 2>/dev/null || echo 0)"
    [ "$audit_n" -gt 0 ] || fail "$FLAVOUR: privfence audit reported no findings"
    "$PF" plan --policy "$policy" --service bench --account "$plan_account" --format json --defaults-file "$CNF" \
        >"$WORK/plan.json" 2>"$WORK/plan.err" || plan_rc=$?
    [ "$plan_rc" -eq 0 ] || fail "$FLAVOUR: privfence plan --account $plan_account exited with $plan_rc: $(head -c 1000 "$WORK/plan.err")"
    # session start without --account and without a terminal: reads, lists the candidates with
    # their evidence of use, and stops before anything is cut.
    session_start() {
        "$PF" session start --policy "$policy" --service bench --journal "$journal" --reports "$reports" \
            --no-notify --defaults-file "$CNF" </dev/null
    }
    session_start >"$WORK/session.out" 2>"$WORK/session.err" || session_rc=$?
    [ "$session_rc" -eq 0 ] || fail "$FLAVOUR: privfence session start exited with $session_rc: $(head -c 1000 "$WORK/session.err")"
    # The count heads the list (which shows its first 50 rows without --all-candidates).
    session_n="$(sed -n "s/^Who can still touch the service's tables (\([0-9]*\)):.*/\1/p" "$WORK/session.out" | head -1)"
    session_n="${session_n:-0}"
    [ "$session_n" -gt 0 ] || fail "$FLAVOUR: privfence session start listed no candidates"

    # Timings. The raw read: every grant table privfence reads, SELECT *, one client run.
    local tables
    if [ "$FLAVOUR" = mariadb ]; then
        tables="global_priv db tables_priv columns_priv procs_priv proxies_priv roles_mapping"
    else
        tables="user db tables_priv columns_priv procs_priv proxies_priv role_edges default_roles global_grants"
    fi
    local raw_sql="" t
    for t in $tables; do raw_sql+="SELECT * FROM mysql.$t; "; done
    local ROWS=() raw_median="" load_before
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
    # row LABEL RUNS IGNORE_EXIT CMD...
    row() {
        local label="$1" runs="$2" ignore="$3"; shift 3
        LAST_MEDIAN=""
        log "timing: $label ($runs run(s))"
        if ! time_cmd "$runs" "$ignore" "$@"; then
            fail "$FLAVOUR: $label failed while being timed"
            ROWS+=("| $label | $runs | failed | | | |")
            return
        fi
        local median min max
        read -r median min max <<<"$TIMES"
        [ -n "$raw_median" ] || raw_median="$median"
        ROWS+=("| $label | $runs | $(fmt_s "$median") | $(fmt_s "$min") | $(fmt_s "$max") | $(fmt_ratio "$median" "$raw_median") |")
        LAST_MEDIAN="$median"
    }
    local client_name
    client_name="$(basename "${CLIENT[${#CLIENT[@]} - 2]}")"
    row "raw read: \`$client_name -e 'SELECT * FROM mysql.<t>; ...'\` ($(wc -w <<<"$tables") tables)" "$RUNS" 0 \
        "${CLIENT[@]}" -B -e "$raw_sql"
    row "\`privfence inventory --format json\`" "$RUNS" 0 "$PF" inventory --format json --defaults-file "$CNF"
    local pf_median="$LAST_MEDIAN"
    row "\`privfence inventory --format table\`" "$RUNS" 0 "$PF" inventory --format table --defaults-file "$CNF"
    READ_RATIOS=("inventory --format json=$pf_median")
    row "\`privfence access 'bench_s01.*' --format json\`" "$RUNS" 0 "$PF" access 'bench_s01.*' --format json --defaults-file "$CNF"
    READ_RATIOS+=("access=$LAST_MEDIAN")
    row "\`privfence audit --format json\` (exit 1: drift)" "$RUNS" 1 \
        "$PF" audit --policy "$policy" --out "$reports" --format json --defaults-file "$CNF"
    READ_RATIOS+=("audit=$LAST_MEDIAN")
    row "\`privfence plan --account $plan_account --format json\`" "$RUNS" 0 \
        "$PF" plan --policy "$policy" --service bench --account "$plan_account" --format json --defaults-file "$CNF"
    READ_RATIOS+=("plan=$LAST_MEDIAN")
    row "\`privfence session start\` (no \`--account\`: the candidate list, then stop)" "$RUNS" 0 \
        "$PF" session start --policy "$policy" --service bench --journal "$journal" --reports "$reports" \
        --no-notify --defaults-file "$CNF"
    READ_RATIOS+=("session start=$LAST_MEDIAN")
    # --verify: the default (the privilege views, SHOW GRANTS on the flavour's default
    # connections for the accounts they cannot show: see src/inventory/verify.rs), then
    # --verify=full (SHOW GRANTS for every account), then pt-show-grants.
    local verify_median="" verify_full_median="" pt_median=""
    if [ "$SLOW_RUNS" -gt 0 ]; then
        row "\`privfence inventory --format json --verify\` (default: the privilege views)" "$SLOW_RUNS" 1 \
            "$PF" inventory --format json --verify --defaults-file "$CNF"
        verify_median="$LAST_MEDIAN"
        row "\`privfence inventory --format json --verify=full\` (SHOW GRANTS for every account)" "$SLOW_RUNS" 0 \
            "$PF" inventory --format json --verify=full --defaults-file "$CNF"
        verify_full_median="$LAST_MEDIAN"
        row "\`pt-show-grants\`" "$SLOW_RUNS" 1 pt-show-grants --defaults-file="$CNF"
        pt_median="$LAST_MEDIAN"
    fi

    local ratio verdict
    ratio="$(awk -v a="$pf_median" -v b="$raw_median" 'BEGIN { printf "%.2f", a / b }')"
    if awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { exit !(r <= t) }'; then
        verdict="met: \`privfence inventory --format json\` takes ${ratio}x the raw read (target ${TARGET_RATIO}x)"
    else
        verdict="missed: \`privfence inventory --format json\` takes ${ratio}x the raw read (target ${TARGET_RATIO}x)"
    fi
    if [ "$SMOKE" = 1 ] && ! awk -v r="$ratio" -v t="$SMOKE_MAX_RATIO" 'BEGIN { exit !(r <= t) }'; then
        fail "$FLAVOUR: privfence inventory took ${ratio}x the raw read (smoke limit ${SMOKE_MAX_RATIO}x)"
    fi
    # Every read command against the raw read (target 2x each).
    local multiples="" missed="" entry name median r
    for entry in "${READ_RATIOS[@]}"; do
        name="${entry%=*}" median="${entry##*=}"
        [ -n "$median" ] || continue
        r="$(awk -v a="$median" -v b="$raw_median" 'BEGIN { printf "%.2f", a / b }')"
        multiples+="${multiples:+, }$name ${r}x"
        awk -v r="$r" -v t="$TARGET_RATIO" 'BEGIN { exit !(r <= t) }' || missed+="${missed:+, }$name"
    done
    local reads_verdict
    if [ -z "$missed" ]; then
        reads_verdict="met: every read command within ${TARGET_RATIO}x the raw read ($multiples)"
    else
        reads_verdict="missed by $missed ($multiples; target ${TARGET_RATIO}x each)"
    fi
    local speedup speedup_full verify_verdict
    if [ -z "$verify_median" ] || [ -z "$pt_median" ]; then
        verify_verdict="not measured in this run"
    else
        speedup="$(awk -v a="$pt_median" -v b="$verify_median" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')"
        speedup_full="$(awk -v a="$verify_full_median" -v b="$verify_median" 'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else print "?" }')"
        if awk -v r="$speedup" 'BEGIN { exit !(r + 0 >= 4) }'; then
            verify_verdict="met: pt-show-grants takes ${speedup}x as long as \`--verify\` (target 4x)"
        else
            verify_verdict="missed: pt-show-grants takes ${speedup}x as long as \`--verify\` (target 4x)"
        fi
        verify_verdict+="; \`--verify=full\` takes ${speedup_full}x as long as \`--verify\`"
    fi

    # The results block (also written to docs/benchmarks.md in full mode).
    local cpu mem kernel os
    cpu="$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')"
    mem="$(free -h | awk '/^Mem:/ { print $2 }' | sed -E 's/([0-9.]+)([KMGT])i$/\1 \2iB/')"
    kernel="$(uname -r)"
    os="Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    local block="$WORK/block-$FLAVOUR.md"
    {
        echo "#### $([ "$FLAVOUR" = mariadb ] && echo MariaDB || echo MySQL) $version, $(date -u '+%F %H:%M UTC')"
        echo
        echo "- Machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $kernel, $os."
        echo "- Software: privfence $REV (release build), $("${CLIENT[@]:0:${#CLIENT[@]}-1}" --version | sed -E 's#^.*/##; s/ +/ /g; s/,.*//'),"\
             "$(pt-show-grants --version 2>&1 | head -1),"\
             "$([ "$HYPERFINE" = 1 ] && hyperfine --version || echo 'date loop')."
        echo "- Data: $(fmt_int "$a_acc") accounts, $(fmt_int "$a_tp") mysql.tables_priv rows, $(fmt_int "$a_db")"\
             "mysql.db rows, $(fmt_int "$a_col") mysql.columns_priv rows; $(fmt_int $((SCHEMAS * TABLES))) tables in"\
             "$SCHEMAS schemas. Loaded in $load_s s."
        echo "- privfence reported $(fmt_int "$pf_acc") accounts, $(fmt_int "$pf_tp") table, $(fmt_int "$pf_db") schema"\
             "and $(fmt_int "$pf_col") column grants ($(human_size "$json_size") of JSON); pt-show-grants dumped"\
             "$(fmt_int "$pt_lines") accounts ($(human_size "$pt_size"))."
        echo "- Load average before timing: $load_before (1, 5, 15 min)."
        echo "- \`--verify\`: ${verify_note:-exit $verify_rc}."
        echo "- Target (inventory) $verdict."
        echo "- Target (all read commands) $reads_verdict."
        echo "- Target (\`--verify\`) $verify_verdict."
        echo "- Policy: one service owning the 20 tables of \`bench_s01\`; \`access\` found $(fmt_int "$access_n")"\
             "entries, \`audit\` $(fmt_int "$audit_n") findings, \`session start\` listed $(fmt_int "$session_n") candidates."
        echo
        echo "| command | runs | median s | min s | max s | vs raw read |"
        echo "|---|--:|--:|--:|--:|--:|"
        printf '%s\n' "${ROWS[@]}"
    } >"$block"
    cat "$block"
    echo
    if [ "$DOCS" = 1 ]; then update_docs "$FLAVOUR" "$block"; fi

    if [ "$KEEP" = 1 ]; then
        log "== $FLAVOUR: the sandbox stays up in $dir (client.cnf: $CNF)"
        return
    fi
    log "== $FLAVOUR: removing the sandbox"
    "$PF" sandbox down --dir "$dir" >/dev/null 2>&1 || log "could not remove the sandbox in $dir"
    STARTED=("${STARTED[@]/$dir/}")
}

# Replaces this flavour's results between its markers in docs/benchmarks.md (appends them,
# markers included, when the markers are missing).
update_docs() {
    local flavour="$1" block="$2" doc="$REPO/docs/benchmarks.md"
    local key="$flavour"
    [ "$ACCOUNTS" -eq 10000 ] || key="$flavour-$ACCOUNTS"
    local begin="<!-- bench-inventory:$key:begin -->" end="<!-- bench-inventory:$key:end -->"
    [ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
    if grep -qF "$begin" "$doc" && grep -qF "$end" "$doc"; then
        awk -v b="$begin" -v e="$end" -v f="$block" '
            $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
            $0 == e { skip = 0 }
            !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    else
        { echo; echo "$begin"; cat "$block"; echo "$end"; } >>"$doc"
    fi
    log "updated $doc ($flavour)"
}

started_at="$(date +%s)"
for f in $FLAVOURS; do bench_flavour "$f"; done
log "finished in $(( $(date +%s) - started_at )) s"
if [ "${#FAILURES[@]}" -gt 0 ]; then
    log "${#FAILURES[@]} check(s) failed:"
    printf '  %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
log "all checks passed"
