#!/usr/bin/env bash
# Long libFuzzer runs of the C++ kernels (csrc/fuzz/*.cc), with ASan + UBSan (csrc/FUZZING.md).
#
#   tools/fuzz_native.sh [RUNS] [HARNESS...]     # default: 1000000 runs of every harness
#
# Needs clang with libFuzzer (Debian: apt-get install clang libclang-rt-14-dev) and the Unicode
# tables the normal build generates (build/gen/unicode_tables.inc: run the build once first).
# Binaries and corpora go to build/fuzz/; a crash leaves its input there and fails the script.
# WWM_FUZZ_PATHS (fuzz_shard, fuzz_ltp) passes through: e.g. WWM_FUZZ_PATHS=3 drives path 3 alone.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1000000}
shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(tokenizer align instances garden shard ltp chinese_convert)
CXX=${CLANGXX:-clang++}
OUT=build/fuzz
mkdir -p "$OUT"
[ -f build/gen/unicode_tables.inc ] || python csrc/gen_unicode_tables.py build/gen/unicode_tables.inc
FLAGS=(-std=c++17 -O1 -g -pthread -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -Icsrc -Ibuild/gen)
declare -A SOURCES=(
  [tokenizer]="csrc/wordpiece.cc csrc/unicode_props.cc"
  [align]="csrc/align.cc"
  [instances]="csrc/corpus.cc csrc/instances.cc csrc/masking.cc csrc/ngram.cc csrc/tfrecord.cc"
  [garden]="csrc/corpus.cc csrc/garden.cc csrc/instances.cc csrc/masking.cc csrc/tfrecord.cc"
  [shard]="csrc/corpus.cc csrc/fast_shard.cc csrc/instances.cc csrc/masking.cc csrc/tfrecord.cc
           csrc/wordpiece.cc csrc/unicode_props.cc"
  [ltp]="csrc/ltp_cws.cc"
  [chinese_convert]="csrc/chinese_convert.cc"
)
for h in "${HARNESSES[@]}"; do
  # shellcheck disable=SC2086
  "$CXX" "${FLAGS[@]}" "csrc/fuzz/fuzz_$h.cc" ${SOURCES[$h]} -o "$OUT/fuzz_$h"
done
for h in "${HARNESSES[@]}"; do
  mkdir -p "$OUT/corpus_$h"
  start=$(date +%s)
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$OUT/fuzz_$h" -runs="$RUNS" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/crash_${h}_" -print_final_stats=1 "$OUT/corpus_$h" \
    > "$OUT/log_$h.txt" 2>&1 || { tail -40 "$OUT/log_$h.txt"; exit 1; }
  echo "$h: $RUNS runs in $(( $(date +%s) - start )) s; $(grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$OUT/log_$h.txt" | tr '\n' ' ')"
done
