"""Fail loudly, with instructions, when the native extensions are missing or broken.

wwm_fast has no pure-Python fallback: a silent slow path would hide a broken install behind a
100x slowdown. Importing any native module goes through here.

A common case gets its own message: Python started in (or with PYTHONPATH at) the source checkout
after a non-editable ``pip install .``: the unbuilt ``wwm_fast/`` folder of the source tree comes
first on ``sys.path`` and shadows the installed, built package.
"""

import importlib
import importlib.machinery
import os
import sys

_NATIVE_MODULES = ("_align", "_garden", "_instances", "_ltp_cws", "_masking", "_records",
                   "_shard", "_tfrecord", "_wordpiece")

_HOW_TO_BUILD = """\
wwm_fast's native extensions could not be imported ({module}: {error}).

The package must be built before use. From a source checkout:

    pip install .            # or: pip install -e .   (needs g++ with C++17 and Python headers)

If you are running from the source tree after editing csrc/, rebuild in place with

    python setup.py build_ext --inplace
"""

_SHADOWED = """\
wwm_fast is imported from the source tree {here}, which is not built
({module}: {error}).
The source tree shadows the installed, built wwm_fast in {installed}:
the folder Python started in (or a PYTHONPATH entry) comes first on sys.path.

Run from another folder to use the installed package, or build the source tree:

    pip install -e .         # an editable install: the source tree is the installed package
    python setup.py build_ext --inplace
"""


def _built_elsewhere(here: str):
    """Another ``wwm_fast`` folder on sys.path that holds the built extensions, or None."""
    here = os.path.realpath(here)
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for entry in sys.path:
        folder = os.path.realpath(os.path.join(entry or os.getcwd(), "wwm_fast"))
        if folder == here or not os.path.isdir(folder):
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(n.startswith("_wordpiece") and n.endswith(suffixes) for n in names):
            return folder
    return None


# Cython modules import numpy when they load (~0.1 s): they are found here, not loaded, so that
# a command that does not use them (``create`` on text) starts without numpy.
_FOUND_NOT_LOADED = ("_records",)


def _find(name: str) -> None:
    """ImportError unless the extension ``name`` is present beside this file."""
    import importlib.util

    if importlib.util.find_spec("wwm_fast." + name) is None:
        raise ImportError(f"No module named 'wwm_fast.{name}'")


def check_build():
    for name in _NATIVE_MODULES:
        try:
            if name in _FOUND_NOT_LOADED:
                _find(name)
            else:
                importlib.import_module("wwm_fast." + name)
        except ImportError as e:
            here = os.path.dirname(os.path.abspath(__file__))
            source_tree = os.path.exists(os.path.join(os.path.dirname(here), "setup.py"))
            installed = _built_elsewhere(here) if source_tree else None
            text = (_SHADOWED.format(here=here, installed=installed, module="wwm_fast." + name,
                                     error=e) if installed
                    else _HOW_TO_BUILD.format(module="wwm_fast." + name, error=e))
            raise ImportError(text) from e


check_build()
