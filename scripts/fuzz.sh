#!/usr/bin/env bash
# Fuzzing with libFuzzer (clang, ASan + UBSan): builds the targets of
# tests/fuzz in build-fuzz/, seeds each corpus from the spec examples and the
# test data, runs every target for FUZZ_SECONDS (default 60), and prints a
# line per target: executions, coverage (edges), corpus size, crashes. Exits 1
# when a target crashed; the input is kept under build-fuzz/artifacts/.
#   scripts/fuzz.sh                  a minute per target
#   FUZZ_SECONDS=5 scripts/fuzz.sh   the short pass scripts/test.sh runs
#   FUZZ_TARGETS="spool http" ...    some of them
set -euo pipefail
. "$(dirname "$0")/common.sh"

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"callback config rules spool http"}
build_dir=${FUZZ_BUILD:-$TSCB_ROOT/build-fuzz}

install_deps clang libclang-rt-14-dev
log "Building the fuzz targets with clang in $build_dir"
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
CC=clang CXX=clang++ cmake -S "$TSCB_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTSCB_FUZZ=ON -DTSCB_BUILD_TESTS=OFF >/dev/null
# shellcheck disable=SC2046
cmake --build "$build_dir" -j2 --target $(for t in $targets; do printf 'fuzz_%s ' "$t"; done)

work=$(mktemp -d /tmp/tscb-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
artifacts=$build_dir/artifacts
mkdir -p "$artifacts"

# Seed corpora: what the real inputs look like.
seed() {
  local t=$1 dir=$work/$1
  mkdir -p "$dir"
  case $t in
    callback) # a byte choosing the service, then a body from the spec (section 4.3)
      local i=0 f
      for f in "$TSCB_ROOT"/tests/data/callbacks/*.json; do
        { printf "\\x$(printf '%02x' $((i % 6)))"; cat "$f"; } >"$dir/$(basename "$f")"
        i=$((i + 1))
      done ;;
    config) cp "$TSCB_ROOT/config/example.yaml" "$dir/" ;;
    rules) cp "$TSCB_ROOT/config/rules.example.yaml" "$TSCB_ROOT/tests/data/rules/welcome.yaml" "$dir/" ;;
    spool) python3 - "$dir/two-records" <<'PY'
import struct, sys, zlib
def rec(fields, attempt, micros):
    payload = b"".join(struct.pack("<I", len(f)) + f for f in fields)
    payload += struct.pack("<IQ", attempt, micros)
    return b"TSP1" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
a = rec([b"CarrierService", b"127.0.0.1", b"k1", b'{"requestId":"r-1"}', b"r-1", b"", b""], 1, 1790000000000000)
b = rec([b"NiddService", b"::1", b"k2", b'{"x":[1,2]}', b"", b"5555550100", b"mdn"], 2, 1790000000000001)
open(sys.argv[1], "wb").write(a + b)
PY
      ;;
    http)
      printf 'POST /callbacks/CarrierService HTTP/1.1\r\nHost: cb\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' >"$dir/post"
      printf 'POST /callbacks/NiddService HTTP/1.1\r\nHost: cb\r\nX-Forwarded-For: 127.0.0.1, 10.0.0.9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' >"$dir/chunked"
      printf 'GET /callbacks/%%2e%%2e/x?y=1 HTTP/1.0\r\n\r\n' >"$dir/get10" ;;
  esac
}

status=0
printf '\n%-10s %12s %10s %8s %8s  %s\n' target executions exec/s edges corpus result
for t in $targets; do
  seed "$t"
  out=$work/$t.log
  set +e
  "$build_dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
    -rss_limit_mb=2048 -max_len=70000 -timeout=10 -artifact_prefix="$artifacts/$t-" \
    "$work/$t" >"$out" 2>&1
  rc=$?
  set -e
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$out" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$out" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$out" | tail -1 | sed 's/cov: //')
  corpus=$(find "$work/$t" -type f | wc -l)
  result=ok
  if [ $rc -ne 0 ]; then
    result="CRASH (rc $rc), input in $artifacts/$t-*"
    status=1
    grep -E 'ERROR|runtime error|SUMMARY' "$out" | head -5 >&2 || true
  fi
  printf '%-10s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus" "$result"
done
exit $status
