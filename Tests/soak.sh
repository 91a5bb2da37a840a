#!/usr/bin/env bash
# The long crash soak: the real daemon killed with SIGKILL at random moments, KILLS times per helpdesk (default 200),
# its write-backs going through the fault proxy (held, dropped and cut writes). Prints one line of figures per helpdesk;
# exits non-zero on any duplicate or lost write-back. CI runs the same tests with 6 kills each.
#   Tests/soak.sh [KILLS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-200}"
seed="${2:-20261201}"
swift build --build-tests
# A copy of the daemon, so that a rebuild while the soak runs cannot change what is being killed.
copy="$(mktemp -d)/hourledger"
cp .build/debug/hourledger "$copy"
log="$(mktemp -t hourledger-soak.XXXXXX)"
set +e
HOURLEDGER_BINARY="$copy" HOURLEDGER_SOAK_KILLS="$kills" HOURLEDGER_SOAK_SEED="$seed" \
    swift test --skip-build --filter 'CrashSoakTests' >"$log" 2>&1
status=$?
set -e
grep -E '^soak |✘' "$log" || true
echo "full log: $log"
exit $status
