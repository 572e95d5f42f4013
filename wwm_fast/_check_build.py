"""Fail loudly, with instructions, when the native extensions are missing or broken.

wwm_fast has no pure-Python fallback: a silent slow path would hide a broken install behind a
100x slowdown. Importing any native module goes through here.
"""

import importlib

_NATIVE_MODULES = ("_align", "_instances", "_masking", "_records", "_shard", "_tfrecord",
                   "_wordpiece")

_HOW_TO_BUILD = """\
wwm_fast's native extensions could not be imported ({module}: {error}).

The package must be built before use. From a source checkout:

    pip install .            # or: pip install -e .   (needs g++ with C++17 and Python headers)

If you are running from the source tree after editing csrc/, rebuild in place with

    python setup.py build_ext --inplace
"""


def check_build():
    for name in _NATIVE_MODULES:
        try:
            importlib.import_module("wwm_fast." + name)
        except ImportError as e:
            raise ImportError(_HOW_TO_BUILD.format(module="wwm_fast." + name, error=e)) from e


check_build()
