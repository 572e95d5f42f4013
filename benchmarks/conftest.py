"""Shared fixtures for the benchmark suite: the real corpora, loaded once.

Run:  pytest benchmarks/bench_tokenizer.py --benchmark-columns=min,median,rounds
zh_all = People's Daily 1998 + reviews (../shared/data), 13.04 MB, 4,336,084 Google tokens.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VOCAB = SHARED_DATA / "bert-base-chinese-vocab.txt"
ZH_ALL_FILES = [SHARED_DATA / "people_daily_199801.txt.gz", SHARED_DATA / "reviews.txt.gz"]
ZH_ALL_TOKENS = 4_336_084


def _need_data():
    if not VOCAB.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")


@pytest.fixture(scope="session")
def vocab_file() -> str:
    _need_data()
    return str(VOCAB)


@pytest.fixture(scope="session")
def zh_all_bytes() -> bytes:
    """zh_all as one UTF-8 buffer (the two files concatenated)."""
    _need_data()
    return b"".join(gzip.open(p, "rb").read() for p in ZH_ALL_FILES)


@pytest.fixture(scope="session")
def zh_all_lines(zh_all_bytes):
    lines = zh_all_bytes.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


@pytest.fixture(scope="session")
def zh_all_dir(tmp_path_factory, zh_all_bytes):
    """zh_all as plain-text files on disk (what Google's script reads)."""
    _need_data()
    folder = tmp_path_factory.mktemp("zh_all")
    for p in ZH_ALL_FILES:
        (folder / p.name[:-3]).write_bytes(gzip.open(p, "rb").read())
    return folder
