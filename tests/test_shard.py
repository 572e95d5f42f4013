"""wwm_fast/shard.py: the fingerprint and the resume check that every runner shares.

The fingerprint names a shard's output in its stats JSON; a rerun (local pool or Beam) skips a
shard whose recorded fingerprint matches. Its formula is pinned here: a change would make every
finished run redo its shards (and must then come with a version bump). It was checked equal to
the formula before issue 12's restructuring, for local and for staged (Beam, remote) shards.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from wwm_fast import shard
from wwm_fast.stats import STATS_SUFFIX, ShardStats

JOB = shard.ShardJob("/v/vocab.txt", True, 128, 20, 0.15, 0.1, 5, 12345, True, "jieba", "fast",
                     True, False, "strict", 4)
IDENTITY = dict(input="/data/part-0.txt", size=1000, mtime_ns=1_700_000_000_000_000_000,
                vocab_size=109540, vocab_mtime_ns=1_600_000_000_000_000_000,
                output="/out/t-00000-of-00002.tfrecord")


def test_fingerprint_is_pinned():
    assert shard.fingerprint(JOB, 0, IDENTITY) == "440348cc31d68d778b6f"


@pytest.mark.parametrize("change,same", [
    # 0: the number of threads does not change a byte, so not the fingerprint either
    (dict(num_threads=1), True),
    # 1-3: anything that changes the bytes does
    (dict(dupe_factor=4), False),
    (dict(segmenter=None), False),
    (dict(gzip=True), False),
])
def test_fingerprint_follows_the_bytes(change, same):
    other = dataclasses.replace(JOB, **change)
    assert (shard.fingerprint(other, 0, IDENTITY) == shard.fingerprint(JOB, 0, IDENTITY)) == same


def test_fingerprint_follows_index_and_input():
    fp = shard.fingerprint(JOB, 0, IDENTITY)
    assert shard.fingerprint(JOB, 1, IDENTITY) != fp
    assert shard.fingerprint(JOB, 0, dict(IDENTITY, mtime_ns=IDENTITY["mtime_ns"] + 1)) != fp


def _complete(tmp_path, fingerprint="f" * 20, size=None, payload=None):
    out = tmp_path / "o.tfrecord"
    out.write_bytes(b"x" * 10)
    stats = ShardStats(["in.txt"], str(out), instances=3, output_bytes=10 if size is None else size,
                       fingerprint=fingerprint)
    text = json.dumps(stats.to_json()) if payload is None else payload
    (tmp_path / ("o.tfrecord" + STATS_SUFFIX)).write_text(text, encoding="utf-8")
    return str(out)


def test_load_complete_returns_the_recorded_stats(tmp_path):
    out = _complete(tmp_path)
    done = shard.load_complete(out, "f" * 20)
    assert done is not None and done.skipped and done.instances == 3


@pytest.mark.parametrize("kwargs", [
    # 0: another configuration
    dict(fingerprint="e" * 20),
    # 1: the output is not the size the stats recorded (truncated, replaced)
    dict(size=11),
    # 2: a stats file that is not JSON
    dict(payload="{not json"),
    # 3: JSON, but not a stats object
    dict(payload="[1, 2]"),
])
def test_load_complete_refuses(tmp_path, kwargs):
    out = _complete(tmp_path, **kwargs)
    assert shard.load_complete(out, "f" * 20) is None


def test_load_complete_without_output_or_stats(tmp_path):
    out = _complete(tmp_path)
    os.unlink(out)
    assert shard.load_complete(out, "f" * 20) is None
    assert shard.load_complete(str(tmp_path / "never.tfrecord"), "f" * 20) is None


@pytest.mark.parametrize("value,expect", [(None, min(os.cpu_count() or 1, 3)), (1, 1), (8, 3)])
def test_resolve_num_workers(value, expect):
    assert shard.resolve_num_workers(value, 3) == expect


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_resolve_num_workers_refuses(value):
    with pytest.raises(ValueError, match=f"num_workers must be an int >= 1, got {value!r}"):
        shard.resolve_num_workers(value, 3)
