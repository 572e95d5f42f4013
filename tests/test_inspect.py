"""``wwm-fast inspect`` takes the [MASK] id from --vocab_file: records made with a vocab whose
[MASK] is not Google's 103 are summarised right (80% of the predictions show [MASK], 10% a random
token; with the id 103 hard-coded, none showed [MASK])."""

from __future__ import annotations

import json

import pytest

import wwm_fast
from wwm_fast.cli import main


@pytest.fixture(scope="module")
def own_vocab_records(tmp_path_factory, people_daily_lines):
    """Records from a character vocab with [MASK] at id 4 (103 is an ordinary character)."""
    folder = tmp_path_factory.mktemp("inspect")
    lines = people_daily_lines[:400]
    text = folder / "pd.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chars = sorted({c for line in lines for c in line if not c.isspace()})
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars) + "\n",
                     encoding="utf-8")
    out = folder / "r.tfrecord"
    wwm_fast.create_instances(str(text), str(vocab), str(out), dupe_factor=1, progress=False)
    return out, vocab


def test_stats_take_the_mask_id_from_the_vocab(own_vocab_records, capsys):
    out, vocab = own_vocab_records
    assert main(["inspect", str(out), "--stats", "--json", "--vocab_file", str(vocab)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert 0.75 < s["mask_fraction"] < 0.85
    assert 0.05 < s["random_fraction"] < 0.15


def test_vocab_without_mask_is_a_clear_error(own_vocab_records, tmp_path, capsys):
    out, _ = own_vocab_records
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    assert main(["inspect", str(out), "--vocab_file", str(bad)]) == 2
    assert "has no [MASK] token" in capsys.readouterr().err
