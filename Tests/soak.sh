#!/usr/bin/env bash
# The long crash soak: the real daemon killed with SIGKILL at random moments, KILLS times per helpdesk (default 200),
# its write-backs going through the fault proxy (held, dropped and cut writes). Prints one line of figures per helpdesk;
# exits non-zero on any duplicate or lost write-back. CI runs the same tests with 6 kills each.
#   Tests/soak.sh [KILLS] [SEED]
# The failover soak: three daemons on one PostgreSQL ledger, the leader killed or paused ROUNDS times (default 100).
#   Tests/soak.sh failover [ROUNDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
suite=CrashSoakTests
if [ "${1:-}" = failover ]; then suite=FailoverSoakTests; shift; fi
count="${1:-$([ "$suite" = CrashSoakTests ] && echo 200 || echo 100)}"
seed="${2:-$([ "$suite" = CrashSoakTests ] && echo 20261201 || echo 20261204)}"
swift build --build-tests
# A copy of the daemon, so that a rebuild while the soak runs cannot change what is being killed.
copy="$(mktemp -d)/hourledger"
cp .build/debug/hourledger "$copy"
log="$(mktemp -t hourledger-soak.XXXXXX)"
set +e
HOURLEDGER_BINARY="$copy" HOURLEDGER_SOAK_KILLS="$count" HOURLEDGER_FAILOVER_ROUNDS="$count" HOURLEDGER_SOAK_SEED="$seed" \
    swift test --skip-build --filter "$suite" >"$log" 2>&1
status=$?
set -e
grep -E '^soak |^failover soak|✘' "$log" || true
echo "full log: $log"
exit $status
