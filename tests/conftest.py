"""Shared fixtures: the real data in ../shared/data, Google's reference, --runslow."""

from __future__ import annotations

import gzip
import os
import signal
from pathlib import Path

import pytest

# A shell starts a background job (`cmd &`, nohup, some CI runners) with SIGINT ignored; Python
# then installs no KeyboardInterrupt handler, and its children inherit the ignored signal. The
# Ctrl-C tests (tests/test_cli.py) need the usual disposition, here and in the commands they start
# (an exec'd child gets SIGINT's default when this process has a handler).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VOCAB = SHARED_DATA / "bert-base-chinese-vocab.txt"
PEOPLE_DAILY = SHARED_DATA / "people_daily_199801.txt.gz"
PEOPLE_DAILY_SEG = SHARED_DATA / "people_daily_199801.seg.txt.gz"
REVIEWS = SHARED_DATA / "reviews.txt.gz"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (whole-corpus and full-pipeline checks)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_shared_data():
    """Skips the test when ../shared/data is absent; under CI (CI=true) that fails instead: a CI
    run that silently skipped every check against the real corpora would prove nothing."""
    if VOCAB.exists():
        return
    message = f"shared data folder not found at {SHARED_DATA} (expected ../shared/data beside the checkout)"
    if _in_ci():
        pytest.fail(message + "; CI=true, so this is an error, not a skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def vocab_file() -> str:
    require_shared_data()
    return str(VOCAB)


def _read_lines(path: Path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.decode("utf-8") for line in lines]


@pytest.fixture(scope="session")
def people_daily_lines():
    require_shared_data()
    return _read_lines(PEOPLE_DAILY)


@pytest.fixture(scope="session")
def people_daily_seg_lines():
    require_shared_data()
    return _read_lines(PEOPLE_DAILY_SEG)


@pytest.fixture(scope="session")
def reviews_lines():
    require_shared_data()
    return _read_lines(REVIEWS)
