#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the native code (issue 11).
#
# Builds every extension with WWM_SANITIZE=1 (setup.py: -fsanitize=address,undefined, abort on
# the first report, Cython bounds checks on) into build/sanitize -- the normal in-place build is
# left alone -- then runs the kernel tests and the hypothesis fuzz targets against that build with
# libasan preloaded (CPython itself is not instrumented; leak checking is off because CPython
# keeps memory until exit).
#
#   tools/sanitize.sh                 # the fuzz targets and the kernel tests (CI-sized)
#   WWM_FUZZ_EXAMPLES=5000 tools/sanitize.sh tests/test_fuzz_native.py   # longer fuzzing
#   tools/sanitize.sh --python tools/fuzz_records.py --inputs 1000000   # any script, sanitized
#
# Any sanitizer report aborts the test process: the script then fails with the report on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
BASE=build/sanitize
# setup.py runs here without pip's build isolation: the build requirements must be importable
# (pyproject.toml [build-system]; a venv made by "pip install -e ." does not have them)
"$PYTHON" -c "import pybind11, Cython, setuptools" 2>/dev/null ||
  "$PYTHON" -m pip install -q "setuptools>=64" wheel "pybind11>=2.11" "Cython>=3.0"

WWM_SANITIZE=1 "$PYTHON" setup.py -q build --build-base "$BASE" --build-lib "$BASE/lib" >/dev/null
LIBASAN=$("${CXX:-g++}" -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || { echo "libasan.so not found (install the compiler's ASan runtime)" >&2; exit 2; }

if [ "$#" -eq 0 ]; then  # the kernel tests and the fuzz targets
  set -- tests/test_native_boundary.py tests/test_fuzz_native.py tests/test_tokenization.py \
         tests/test_alignment.py tests/test_instances.py tests/test_tfrecord.py
fi
# PYTHONPATH puts the sanitized package before the editable/installed one; tests that start
# subprocesses pass the environment on, so those run sanitized too.
# PYTHONSAFEPATH: "python -m pytest" / "python -" must not put the checkout's own wwm_fast (the
# release build, in place) first on sys.path.
export PYTHONPATH="$PWD/$BASE/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONSAFEPATH=1
# libstdc++ too: CPython does not link it, and ASan's __cxa_throw interceptor must find the real
# one when it starts (else the first C++ exception aborts: "real___cxa_throw != 0").
export LD_PRELOAD="$LIBASAN $("${CXX:-g++}" -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
"$PYTHON" - <<'PY'
import wwm_fast, wwm_fast._wordpiece as w
assert "build/sanitize" in w.__file__, f"not the sanitized build: {w.__file__}"
print(f"sanitized build: {wwm_fast.__file__}")
PY
if [ "${1:-}" = "--python" ]; then
  shift
  exec "$PYTHON" "$@"
fi
exec "$PYTHON" -m pytest -p no:cacheprovider -q "$@"
