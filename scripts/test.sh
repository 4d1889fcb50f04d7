#!/usr/bin/env bash
# The test command (README, .ci/run): installs the servers the tests need when missing
# (MariaDB 10.11 from Debian, MySQL 9.x from Debian unstable into a private folder), then runs
# every test against real servers of both flavours. No test is skipped for want of a server: a
# server that cannot be provisioned fails its tests with a message naming what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-servers.sh all >/dev/null
exec cargo test --locked "$@"
