#!/usr/bin/env bash
# Every test: installs what it needs, builds, starts a throwaway PostgreSQL,
# runs the unit, pg and e2e tiers with ctest, a short fuzz pass, then the three
# tiers again under AddressSanitizer + UBSan, stops PostgreSQL. Exits non-zero on any failure, and when any tier
# ran no test or skipped one.
#   TSCB_SANITIZE=1 scripts/test.sh       the same under AddressSanitizer + UBSan (build-asan/)
#   TSCB_SANITIZE=thread scripts/test.sh  the same under ThreadSanitizer (build-tsan/)
set -euo pipefail
if [ "${TSCB_SANITIZE:-0}" = thread ]; then
  export TSCB_BUILD=${TSCB_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build-tsan}
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
elif [ "${TSCB_SANITIZE:-0}" = 1 ]; then
  export TSCB_BUILD=${TSCB_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build-asan}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")/.." && pwd)/tests/lsan.supp:print_suppressions=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
. "$(dirname "$0")/common.sh"
. "$TSCB_ROOT/scripts/pg.sh"

# prometheus: promtool checks the /metrics output; systemd: systemd-analyze checks the unit.
install_deps prometheus systemd testssl.sh
status=0
check_format || status=1
if [ "${TSCB_SANITIZE:-0}" = 1 ]; then
  build Debug -DTSCB_SANITIZE=ON
elif [ "${TSCB_SANITIZE:-0}" = thread ]; then
  build Debug -DTSCB_SANITIZE_THREAD=ON
else
  build RelWithDebInfo
fi

check_unit || status=1
check_package || status=1

log "Starting a throwaway PostgreSQL"
work=$(mktemp -d /tmp/tscb-test.XXXXXX)
cleanup() { pg_stop; rm -rf "$work"; }
trap cleanup EXIT
pg_start "$work/pg"
export TSCB_TEST_PG_HOST=127.0.0.1 TSCB_TEST_PG_PORT=$TSCB_PG_PORT TSCB_TEST_PG_USER=postgres

# run_tier NAME LABEL [REGEX]: one ctest tier of $TSCB_BUILD, its output kept
# as $work/ctest-NAME.txt for the closing count.
tiers=()
run_tier() {
  local name=$1 label=$2 regex=${3:-}
  log "ctest -L $label${regex:+ -R '$regex'} ($TSCB_BUILD)"
  local out="$work/ctest-$name.txt"
  tiers+=("$name")
  ctest --test-dir "$TSCB_BUILD" -L "^$label\$" ${regex:+-R "$regex"} -j2 --timeout 180 \
    --output-on-failure --no-tests=error 2>&1 | tee "$out" || status=1
  if grep -Eq '(Not Run|\*\*\*Skipped)' "$out"; then
    echo "ctest -L $label: some tests were skipped or not run" >&2
    status=1
  fi
}
for label in unit pg e2e; do run_tier "$label" "$label"; done
# A short fuzz pass (5 s a target; scripts/fuzz.sh runs longer ones). Not
# under the sanitizer builds: the fuzz targets carry ASan and UBSan already.
if [ "${TSCB_SANITIZE:-0}" = 0 ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-5} "$TSCB_ROOT/scripts/fuzz.sh" || status=1
fi
# The sanitizer pass of every run (CI included): the unit, pg and e2e tiers
# again under AddressSanitizer + UBSan, in build-asan/ (TSCB_CI_ASAN=0 skips
# it; TSCB_SANITIZE=1 runs only that, TSCB_SANITIZE=thread ThreadSanitizer).
if [ "${TSCB_SANITIZE:-0}" = 0 ] && [ "${TSCB_CI_ASAN:-1}" = 1 ]; then
  TSCB_BUILD=$TSCB_ROOT/build-asan
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export LSAN_OPTIONS=suppressions=$TSCB_ROOT/tests/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  build Debug -DTSCB_SANITIZE=ON || status=1
  run_tier asan-unit unit
  run_tier asan-pg pg
  run_tier asan-e2e e2e
fi
# One closing line for all tiers, from ctest's own summaries.
passed=0 failed=0
for label in "${tiers[@]}"; do
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$work/ctest-$label.txt" || true)
  if [ -z "$line" ]; then status=1; continue; fi
  f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + t - f))
  failed=$((failed + f))
done
[ $status -eq 0 ] || [ $failed -gt 0 ] || failed=1
echo
echo "tests: $passed passed, $failed failed"
exit $status
