"""Build script for wwm_fast: C++ kernels (pybind11) and Cython modules.

`pip install .` builds every extension. Nothing is optional: a failed build fails the install,
and an unbuilt checkout fails at import with an ImportError that says how to build
(wwm_fast/_check_build.py).

The Unicode tables of the tokenizer are generated here, from the building interpreter's
unicodedata (csrc/gen_unicode_tables.py), so that they match the Python the reference runs on.

Switches (environment variables):
  WWM_DEBUG_CYTHON=1  Cython bounds and initialization checks on (STYLE rule 14).
  WWM_SANITIZE=1      AddressSanitizer + UndefinedBehaviorSanitizer build of every extension
                      (-O1 -g, abort on the first report; implies WWM_DEBUG_CYTHON). Build it
                      apart from the normal one (tools/sanitize.sh builds into build/sanitize and
                      runs the kernel and fuzz tests with libasan preloaded).
"""

import glob
import os
import re
import subprocess
import sys

from pybind11.setup_helpers import Pybind11Extension
from pybind11.setup_helpers import build_ext as pybind_build_ext
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    """``__version__`` from wwm_fast/_version.py (one definition; the package is not built yet)."""
    text = open(os.path.join(HERE, "wwm_fast", "_version.py"), encoding="utf-8").read()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)

GEN_DIR = os.path.join("build", "gen")
SANITIZE = os.environ.get("WWM_SANITIZE") == "1"
DEBUG_CYTHON = os.environ.get("WWM_DEBUG_CYTHON") == "1" or SANITIZE
SANITIZER_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                   "-fno-omit-frame-pointer"]
CXX_FLAGS = ["-O3", "-Wall", "-pthread"]
LINK_FLAGS = ["-pthread"]
if SANITIZE:
    CXX_FLAGS = ["-O1", "-g", "-Wall", "-pthread", *SANITIZER_FLAGS]
    LINK_FLAGS = ["-pthread", *SANITIZER_FLAGS]


def native(name, sources, include_dirs=()):
    """A pybind11 extension wwm_fast.<name> from csrc sources (sorted for reproducible builds)."""
    return Pybind11Extension(
        "wwm_fast." + name,
        sorted(os.path.join("csrc", s) for s in sources),
        include_dirs=["csrc", GEN_DIR, *include_dirs],
        depends=sorted(glob.glob(os.path.join("csrc", "*.h"))),  # rebuild when a header changes
        cxx_std=17,
        extra_compile_args=list(CXX_FLAGS),  # copies: the build appends to these lists
        extra_link_args=list(LINK_FLAGS),
    )


EXTENSIONS = [
    native("_align", ["align.cc", "bind_align.cc"]),
    native("_chinese_convert", ["bind_chinese_convert.cc", "chinese_convert.cc"]),
    native("_garden", ["bind_garden.cc", "corpus.cc", "garden.cc", "instances.cc", "masking.cc",
                       "tfrecord.cc"]),
    native("_instances", ["bind_instances.cc", "corpus.cc", "instances.cc", "masking.cc"]),
    native("_ltp_cws", ["bind_ltp_cws.cc", "ltp_cws.cc"]),
    native("_masking", ["bind_masking.cc", "corpus.cc", "masking.cc", "ngram.cc"]),
    native("_shard", ["bind_shard.cc", "corpus.cc", "fast_shard.cc", "instances.cc", "masking.cc",
                      "ngram.cc", "tfrecord.cc", "unicode_props.cc", "wordpiece.cc"]),
    native("_tfrecord", ["bind_tfrecord.cc", "corpus.cc", "tfrecord.cc"]),
    native("_wordpiece", ["bind_wordpiece.cc", "unicode_props.cc", "wordpiece.cc"]),
]

CYTHON_MODULES = [  # (module, pyx path)
    ("wwm_fast._records", "wwm_fast/_records.pyx"),
]


class build_ext(pybind_build_ext):
    """Generates the Unicode tables before compiling anything."""

    def run(self):
        os.makedirs(os.path.join(HERE, GEN_DIR), exist_ok=True)
        target = os.path.join(HERE, GEN_DIR, "unicode_tables.inc")
        generator = os.path.join(HERE, "csrc", "gen_unicode_tables.py")
        if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(generator):
            subprocess.check_call([sys.executable, generator, target])
        super().run()


def cython_extensions():
    if not CYTHON_MODULES:
        return []
    from Cython.Build import cythonize

    exts = [
        Extension(name, [path], include_dirs=[__import__("numpy").get_include()],
                  extra_compile_args=CXX_FLAGS[:2] + SANITIZER_FLAGS if SANITIZE else ["-O3"],
                  extra_link_args=list(LINK_FLAGS) if SANITIZE else [], language="c++",
                  define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
        for name, path in CYTHON_MODULES
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG_CYTHON,
            "wraparound": False,
            "initializedcheck": DEBUG_CYTHON,
            "cdivision": True,
        },
        # checked builds generate their C++ elsewhere: cythonize does not notice a change of
        # directives, and the release build must never reuse a checked _records.cpp (or back)
        build_dir=os.path.join("build", "cython-debug") if DEBUG_CYTHON else None,
    )


TEST_DEPS = [
    "pytest>=8",
    "pytest-benchmark>=4",
    "hypothesis>=6",
    "bert-tensorflow==1.0.4",
    "tensorflow-cpu>=2.20,<2.22",
    "jieba>=0.42",
    "ltp-extension>=0.1.13",
    "psutil>=5",
    "apache-beam==2.77.*",
    "protobuf<7",
    # the transformers bridge (tests/test_trainer_hf.py); torch pinned: a bare `torch` pulls a
    # multi-GB CUDA build, 2.13.0 is the CPU wheel these machines install from local disk
    "torch==2.13.0",
    "transformers>=5.0,<6",
    "safetensors>=0.4",
    "opencc>=1.1",
    "marisa-trie>=1.1",
]

setup(
    name="wwm-fast",
    version=read_version(),
    description="Fast, exact Chinese whole-word-masking BERT pre-training data and trainer",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=["wwm_fast", "wwm_fast.commands", "wwm_fast.segmentation", "wwm_trainer"],
    package_dir={"wwm_fast": "wwm_fast", "wwm_trainer": "trainer"},
    package_data={"wwm_fast": ["*.pyi", "py.typed", "*.md", "segmentation/README.md"],
                  "wwm_trainer": ["README.md"]},
    ext_modules=EXTENSIONS + cython_extensions(),
    cmdclass={"build_ext": build_ext},
    install_requires=["numpy>=1.22", "tqdm>=4.60"],
    extras_require={
        "test": TEST_DEPS,
        "bench": ["pytest-benchmark>=4", "tokenizers>=0.15", "bert-tensorflow==1.0.4",
                  "tensorflow-cpu>=2.20,<2.22", "psutil>=5"],
        "train": ["tensorflow-cpu>=2.20,<2.22"],
        # use `wwm-train export --format=hf` folders in transformers, read pytorch_model.bin;
        # the export itself and safetensors imports need neither
        "hf": ["safetensors>=0.4", "torch>=2.1", "transformers>=5.0"],
        "ltp": ["ltp-extension>=0.1.13"],
        "ltp-neural": ["ltp>=4.2"],
        "jieba": ["jieba>=0.42"],
        # marisa-trie reads OpenCC's .ocd2 dictionaries for the native converter
        "opencc": ["opencc>=1.1", "marisa-trie>=1.1"],
        "beam": ["apache-beam==2.77.*", "protobuf<7"],
    },
    entry_points={
        "console_scripts": [
            "wwm-fast=wwm_fast.cli:main",
            "wwm-train=wwm_trainer.cli:main",
        ]
    },
    zip_safe=False,
)
