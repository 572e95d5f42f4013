"""The LTP benchmarks' shared fixtures: the trained LTP model, zh_all's lines, the rate record.

Imported by bench_segment.py and bench_ltp_cws.py (``from _ltp_models import ...``: a fixture
imported into a module serves that module's tests). Not a test module itself.

LTP model: $WWM_FAST_LTP_MODEL if set, else one trained here once (10 epochs on 90% of the People's
Daily gold segmentation, as tests/test_segmentation_train.py's slow test; ~1-2 minutes, 1.5 GB)
and kept in pytest's cache folder for later runs.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from conftest import SHARED_DATA


@pytest.fixture(scope="module")
def ltp_model_file(request):
    pytest.importorskip("ltp_extension")
    path = os.environ.get("WWM_FAST_LTP_MODEL")
    if path:
        return path
    folder = Path(request.config.cache.mkdir("wwm_fast_ltp_bench"))
    model = folder / "cws_pd90_e10.bin"
    if not model.exists():
        from wwm_fast.segmentation import train_ltp_segmenter

        with gzip.open(SHARED_DATA / "people_daily_199801.seg.txt.gz", "rb") as f:
            gold = [x for x in f.read().decode("utf-8").split("\n") if x.strip()]
        train = folder / "train.txt"
        train.write_text("\n".join(gold[:len(gold) * 9 // 10]) + "\n", encoding="utf-8")
        train_ltp_segmenter(str(train), str(model), epoch=10)
    return str(model)


@pytest.fixture(scope="module")
def lines(zh_all_lines):
    return zh_all_lines


@pytest.fixture(scope="module")
def n_chars(lines):
    return sum(map(len, lines))


def record_rate(benchmark, results: dict, key: str, n_chars: int, **info) -> None:
    """Keep the best round under ``results[key]``; characters per second (best and median
    round) and ``info`` go into the benchmark's extra_info."""
    stats = benchmark.stats.stats
    results[key] = stats.min
    benchmark.extra_info.update(chars=n_chars,
                                mchars_per_s_best=round(n_chars / stats.min / 1e6, 3),
                                mchars_per_s_median=round(n_chars / stats.median / 1e6, 3), **info)
