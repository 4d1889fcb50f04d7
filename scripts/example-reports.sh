#!/usr/bin/env bash
# Regenerates the example reports checked in under reports/: runs the demo on each flavour,
# keeps its sandbox, audits it with policies/, and names the reports example-<flavour>.*.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
bin=target/release/privfence
for f in mariadb mysql; do
    dir=".sandbox/demo-$f"
    [ -e "$dir/sandbox.json" ] && "$bin" sandbox down --dir "$dir"
    "$bin" demo --flavour "$f" --keep >/dev/null
    out=$(mktemp -d)
    "$bin" audit --policy policies --defaults-file "$dir/primary/client.cnf" --name "demo-$f-primary" \
        --replica "127.0.0.1:$(sed -n 's/^port=//p' "$dir/replica/client.cnf")" --out "$out" >/dev/null || true
    mv "$out"/audit-*.md "reports/example-$f.md"
    mv "$out"/audit-*.json "reports/example-$f.json"
    "$bin" sandbox down --dir "$dir"
done
ls -l reports/
