"""TF Model Garden's create_pretraining_data.py, unmodified, as the oracle of compat mode's
reference="garden" (tests/test_compat_garden.py).

Where it comes from: the PyPI wheel of tf-models-official (official/nlp/data/
create_pretraining_data.py and the official/nlp/tools/tokenization.py it imports), installed
*without* its dependencies, which pin tensorflow~=2.20 and tensorflow-text and would replace the
project's TensorFlow:

    pip install --no-deps tf-models-official==2.20.0

Nothing of it is copied into this repository or changed. It runs on the installed TensorFlow
(2.21) with exactly two imports stubbed, both unused on the WordPiece path:

* ``tf_keras``: both files say ``import tensorflow as tf, tf_keras`` and never use it (the real
  package would pull in the full ``tensorflow`` distribution);
* ``sentencepiece``: tokenization.py imports it for ``FullSentencePieceTokenizer`` only.

Each is an empty module put in ``sys.modules`` only when the real package is not installed.

The script runs in a subprocess (``python garden_oracle.py JOBS.json RESULTS.json``), for two
reasons: its absl flags (``input_file``, ``output_file``, ...) have the names bert-tensorflow's
script defines in the pytest process for the Google oracle (absl refuses a second definition),
and it draws n-gram sizes from Python's global ``random`` module, which the subprocess seeds per
job (``random.seed(global_seed)``; the script itself never seeds it).

Jobs (a JSON list; the result of each is a dict in the same order):

* ``{"kind": "create", "argv": [...], "global_seed": S, "gold": [raw_path, seg_path] | null}``:
  the script's own flags are reset and parsed from ``argv``, then ``main()`` runs as under
  ``app.run``. With ``gold``, the script's ``FullTokenizer`` is wrapped by the HFL marking of
  google_oracle (tokens inside a gold word get a private ``##`` mark, stripped before the id
  lookup) -- the HFL recipe on top of Model Garden's tokenizer. Result ``{"ok": true}`` or
  ``{"error": "<Type>: <message>"}``.
* ``{"kind": "mask", "vocab_file", "tokens", "masked_lm_prob", "max_predictions_per_seq",
  "do_whole_word_mask", "max_ngram_size", "seed", "global_seed", "repeats"}``: the script's
  ``create_masked_lm_predictions`` called ``repeats`` times with one ``random.Random(seed)``;
  result: the (output tokens, positions, labels) of every call and the next ``random()`` of both
  generators.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

INSTALL_HINT = "pip install --no-deps tf-models-official==2.20.0"
_HERE = Path(__file__).resolve().parent


def script_path():
    """Path of the installed script, or None (found without importing anything)."""
    spec = importlib.util.find_spec("official")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "nlp" / "data" / "create_pretraining_data.py"
        if path.exists():
            return path
    return None


def run_jobs(jobs, workdir, timeout=1800):
    """Runs the jobs in one subprocess; returns their results."""
    workdir = Path(workdir)
    jobs_file, results_file = workdir / "garden_jobs.json", workdir / "garden_results.json"
    jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(jobs_file),
                           str(results_file)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"Model Garden oracle failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    return json.loads(results_file.read_text(encoding="utf-8"))


def decode_examples(path, compression=None):
    """Every record of a TFRecord file as {feature name: (kind, values)} (TensorFlow's reader
    and protobuf parser: every feature, whatever its name)."""
    import tensorflow as tf

    out = []
    for raw in tf.data.TFRecordDataset([str(path)], compression_type=compression):
        example = tf.train.Example.FromString(raw.numpy())
        record = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            record[name] = (kind, list(getattr(feature, kind).value))
        out.append(record)
    return out


# -- the subprocess side ---------------------------------------------------------------------------


def _import_script():
    for name in ("tf_keras", "sentencepiece"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)  # imported, never used on this path
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # the script logs its first 20 instances at INFO
    from official.nlp.data import create_pretraining_data as cpd

    return cpd


def _hfl_tokenizer_factory(cpd, raw_path, seg_path):
    from google_oracle import HFLMarkingTokenizer

    def lines(path):
        return Path(path).read_text(encoding="utf-8").split("\n")

    gold = {r.strip(): s.split() for r, s in zip(lines(raw_path), lines(seg_path))}
    base_class = cpd.tokenization.FullTokenizer

    class GardenHFLTokenizer(HFLMarkingTokenizer):
        """HFL marks over Model Garden's own FullTokenizer (not bert-tensorflow's)."""

        def __init__(self, vocab_file, do_lower_case=True):
            self._tok = base_class(vocab_file=vocab_file, do_lower_case=do_lower_case)
            self.vocab = self._tok.vocab
            self.inv_vocab = self._tok.inv_vocab
            self._gold = gold

    return GardenHFLTokenizer


def _run_create(cpd, job):
    import random

    from absl import flags

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["create_pretraining_data.py"] + list(job["argv"]))
    original = cpd.tokenization.FullTokenizer
    if job.get("gold"):
        cpd.tokenization.FullTokenizer = _hfl_tokenizer_factory(cpd, *job["gold"])
    try:
        random.seed(job["global_seed"])
        cpd.main(None)
    except Exception as e:  # reported to the test, which checks that we fail the same way
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        cpd.tokenization.FullTokenizer = original
    return {"ok": True}


def _run_mask(cpd, job):
    import random

    vocab_words = list(cpd.tokenization.load_vocab(job["vocab_file"]).keys())
    rng = random.Random(job["seed"])
    random.seed(job["global_seed"])
    calls = []
    for _ in range(job["repeats"]):
        tokens, positions, labels = cpd.create_masked_lm_predictions(
            list(job["tokens"]), job["masked_lm_prob"], job["max_predictions_per_seq"],
            vocab_words, rng, job["do_whole_word_mask"], job["max_ngram_size"])
        calls.append([tokens, positions, labels])
    return {"calls": calls, "next_random": rng.random(), "next_global_random": random.random()}


def _main(jobs_file, results_file):
    cpd = _import_script()
    jobs = json.loads(Path(jobs_file).read_text(encoding="utf-8"))
    results = [(_run_create if job["kind"] == "create" else _run_mask)(cpd, job) for job in jobs]
    Path(results_file).write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(_HERE))  # google_oracle, reference
    _main(sys.argv[1], sys.argv[2])
