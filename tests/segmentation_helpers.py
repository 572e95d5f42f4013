"""Shared by the segmentation tests: a small LTP model trained once per session, and HF's rule.

``small_ltp_model`` trains an LTP legacy model (2 epochs on the first 3,000 gold sentences of
People's Daily, about a second) the first time it is asked for, and returns the same file after.

``hf_ref_ids`` is the test oracle of ``wwm-fast refs``: HuggingFace ``run_chinese_ref.py``'s
published rule (BERT_DATA_SPEC §5.2) written out literally, token by token, slow and obvious.
"""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import List

import pytest

from conftest import PEOPLE_DAILY, PEOPLE_DAILY_SEG, require_shared_data

_STATE: dict = {}


def gold_sentences() -> List[str]:
    """Non-blank gold lines of People's Daily (words separated by one space)."""
    require_shared_data()
    if "gold" not in _STATE:
        with gzip.open(PEOPLE_DAILY_SEG, "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
        _STATE["gold"] = [x for x in lines if x.strip()]
    return _STATE["gold"]


def small_ltp_model() -> str:
    """Path of a small LTP legacy CWS model, trained on first use (once per test session)."""
    if "model" not in _STATE:
        pytest.importorskip("ltp_extension")
        from wwm_fast.segmentation import train_ltp_segmenter

        folder = Path(tempfile.mkdtemp(prefix="wwm-test-ltp-"))
        atexit.register(shutil.rmtree, folder, True)
        train = folder / "train.txt"
        train.write_text("\n".join(gold_sentences()[:3000]) + "\n", encoding="utf-8")
        model = folder / "cws_model.bin"
        train_ltp_segmenter(str(train), str(model), epoch=2, shuffle=False)
        _STATE["model"] = str(model)
    return _STATE["model"]


@pytest.fixture(scope="session")
def ltp_model() -> str:
    return small_ltp_model()


# Google's _is_chinese_char: the project's one definition, itself checked against Google's
# function over every code point (test_refs.py::test_cjk_ranges_are_googles)
from wwm_fast._cjk import is_cjk  # noqa: E402


def hf_ref_ids(tokens: List[str], words: List[str], max_length: int = 0) -> List[int]:
    """HF's chinese_ref of one line: ``tokens`` without specials, ``words`` the segmentation.

    1. word set: words longer than one character whose characters are all CJK;
    2. tokens = [CLS] + tokens (+ truncation to max_length - 2 content tokens) + [SEP];
    3. scan left to right; at a token whose characters are all CJK, try the longest window of
       i >= 2 tokens (i up to the longest word) whose concatenation is in the set; on a match,
       prefix "##" to tokens 2..i of the window and jump past it; else move one token on;
    4. report the positions whose token is "##" + one CJK character.
    """
    word_set = {w for w in words if len(w) > 1 and all(is_cjk(ord(c)) for c in w)}
    if max_length:
        tokens = tokens[:max_length - 2]
    marked = ["[CLS]"] + list(tokens) + ["[SEP]"]
    if word_set:
        longest = max(len(w) for w in word_set)
        pos = 0
        while pos < len(marked):
            matched = 0
            if all(is_cjk(ord(c)) for c in marked[pos]):
                for i in range(min(len(marked) - pos, longest), 1, -1):
                    if "".join(marked[pos:pos + i]) in word_set:
                        for j in range(pos + 1, pos + i):
                            marked[j] = "##" + marked[j]
                        matched = i
                        break
            pos += matched if matched else 1
    return [i for i, t in enumerate(marked)
            if t.startswith("##") and len(t) == 3 and is_cjk(ord(t[2]))]


def write_lines(path, lines, newline="\n") -> str:
    data = "".join(x + newline for x in lines).encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    Path(path).write_bytes(data)
    return str(path)


def people_daily_paths():
    require_shared_data()
    return os.fspath(PEOPLE_DAILY), os.fspath(PEOPLE_DAILY_SEG)
