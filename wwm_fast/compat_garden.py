"""Model Garden compat: ``create_instances(mode="compat", reference="garden")``.

Owns what TF Model Garden's script does differently from Google's -- its flags and their checks,
its n-gram masking (through the native ``_garden`` builder), its tokenizer limit and its v2
feature names -- as a ``compat.Reference``. It must not read inputs, write outputs or count stats
(compat mode's one flow in wwm_fast/compat.py does that for every reference), and Google's
reference must not depend on it.

Reproduces the records of TF Model Garden's ``create_pretraining_data.py`` (tensorflow/models,
``official/nlp/data``; PyPI ``tf-models-official``) bit for bit for the same seed, the way
``reference="google"`` reproduces Google's original script. Model Garden forked Google's script;
what differs (and what this module changes on top of compat mode's machinery):

* instances: identical (same documents, chunking, random next, truncation and final shuffle, one
  ``random.Random(random_seed)`` in the same call order) -- the native Google builder is reused;
* masking (``csrc/garden.h``): units are whole words that never cross ``[SEP]``; with
  ``max_ngram_size`` N, runs of 1..N contiguous words are candidates, a size n is drawn with
  weight 1/n, and the 80/10/10 replacement is decided per n-gram instead of per token;
* the n-gram sizes come from Python's *global* ``random`` module, which the script never seeds:
  with N >= 2 its output changes from run to run even with the same ``--random_seed``. We draw
  them from a second MT19937 seeded with ``garden_global_seed`` (default: ``random_seed``), which
  equals Model Garden's output when its global module was seeded with ``random.seed(that)``. With
  N = 1 (or unset) the draw cannot change anything and parity needs ``random_seed`` alone;
* tokenization: WordPiece's ``max_input_chars_per_word`` is 400 (Google: 200);
* ``use_v2_feature_names``: ``input_word_ids`` / ``input_type_ids`` instead of ``input_ids`` /
  ``segment_ids`` (renamed natively after serialization); ``--gzip_compress`` is our ``gzip``;
* invalid UTF-8: Model Garden drops the bytes (our ``errors="ignore"``; Google's script raises).

Whole words with a segmenter or segmentation caches are combined with Model Garden's masking as
compat mode does with Google's: the tokens inside a segmenter word are what the HFL recipe marks
with ``##``, so Model Garden's ``_tokens_to_grams`` groups them into one word and ``max_ngram_size``
masks n-grams of Chinese words (tests/test_compat_garden.py checks this against Model Garden's
script fed HFL-marked tokens).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Iterable, Iterator, Optional

import numpy as np

from . import _check_build  # noqa: F401
from . import _garden
from ._limits import MAX_NGRAM_SIZE, MAX_SEED, check_int
from .compat import Reference
from .instances import Documents, Instances, _check_common, _seed_key, special_ids
from .shard import ShardJob
from .tokenization import FullTokenizer

__all__ = ["REFERENCES", "GardenOptions", "check_options", "garden_tokenizer",
           "build_garden_instances", "rename_v2_features", "reference"]

REFERENCES = ("google", "garden")
# Model Garden's --use_v2_feature_names: (our name, v2 name)
V2_FEATURE_NAMES = (("input_ids", "input_word_ids"), ("segment_ids", "input_type_ids"))
# Model Garden's WordpieceTokenizer default (Google's is 200)
MAX_INPUT_CHARS_PER_WORD = 400


@dataclasses.dataclass(frozen=True)
class GardenOptions:
    """What reference='garden' adds to compat mode's configuration."""

    max_ngram_size: Optional[int]  # None: the script's default (as 1: whole words or tokens)
    use_v2_feature_names: bool
    global_seed: int  # seed of the generator standing in for Python's global random module


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_options(*, mode: str, reference: str, max_ngram_size, use_v2_feature_names,
                  garden_global_seed, do_whole_word_mask: bool, max_seq_length: int,
                  random_seed: int) -> Optional[GardenOptions]:
    """Validate the reference and Model Garden's flags; None unless reference='garden'."""
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {list(REFERENCES)}, got {reference!r}")
    garden_flags = {"max_ngram_size": max_ngram_size is not None,
                    "use_v2_feature_names": bool(use_v2_feature_names),
                    "garden_global_seed": garden_global_seed is not None}
    if reference != "garden":
        used = [k for k, v in garden_flags.items() if v]
        if used:
            raise ValueError(f"{', '.join(used)} {'is' if len(used) == 1 else 'are'} Model "
                             f"Garden's: {'it needs' if len(used) == 1 else 'they need'} "
                             f"mode='compat', reference='garden' (got mode={mode!r}, "
                             f"reference={reference!r})")
        return None
    if mode != "compat":
        raise ValueError(f"reference='garden' selects the script compat mode reproduces: it needs "
                         f"mode='compat', got mode={mode!r}")
    if not isinstance(use_v2_feature_names, (bool, np.bool_)):
        raise TypeError(f"use_v2_feature_names must be a bool, got {use_v2_feature_names!r}")
    if garden_global_seed is None:
        garden_global_seed = random_seed
    else:  # the documented bounds (wwm_fast/_limits.py), as --garden_global_seed's
        check_int("garden_global_seed", garden_global_seed, 0, MAX_SEED)
    n = None
    if max_ngram_size is not None:
        if not _is_int(max_ngram_size):
            raise TypeError(f"max_ngram_size must be an int, got {max_ngram_size!r}")
        n = int(max_ngram_size)
        if n < 1:
            raise ValueError(f"max_ngram_size must be >= 1 (1 = whole words only, N = n-grams of "
                             f"up to N whole words), got {n} (Model Garden's script silently "
                             f"treats 0 as 1 and masks nothing below 0)")
        if n > MAX_NGRAM_SIZE:
            raise ValueError(f"max_ngram_size must be in [1, {MAX_NGRAM_SIZE}], got {n}")
        if n > max_seq_length - 3:
            raise ValueError(f"max_ngram_size must be <= max_seq_length - 3 = "
                             f"{max_seq_length - 3} (the most words an instance holds), got {n}")
        if n * max_seq_length > _garden.MAX_NGRAM_WORK:
            raise ValueError(f"max_ngram_size * max_seq_length must be at most "
                             f"{_garden.MAX_NGRAM_WORK} (Model Garden lists and shuffles every "
                             f"n-gram of every size up to max_ngram_size in each instance), got "
                             f"{n} * {max_seq_length}; at this max_seq_length max_ngram_size "
                             f"can be at most {_garden.MAX_NGRAM_WORK // max_seq_length}")
        if not do_whole_word_mask:
            raise ValueError(f"max_ngram_size={n} masks n-grams of whole words: it needs "
                             f"do_whole_word_mask=True (Model Garden's script raises 'cannot use "
                             f"ngram masking without whole word masking' too)")
    return GardenOptions(n, bool(use_v2_feature_names), int(garden_global_seed))


def garden_tokenizer(vocab_file: str, do_lower_case: bool = True) -> FullTokenizer:
    """Model Garden's FullTokenizer: Google's, with max_input_chars_per_word = 400."""
    return FullTokenizer(vocab_file, do_lower_case=do_lower_case,
                         max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)


def build_garden_instances(docs: Documents, tokenizer: FullTokenizer, *,
                           max_seq_length: int = 128, max_predictions_per_seq: int = 20,
                           masked_lm_prob: float = 0.15, short_seq_prob: float = 0.1,
                           dupe_factor: int = 10, random_seed: int = 12345,
                           do_whole_word_mask: bool = False,
                           max_ngram_size: Optional[int] = None,
                           global_seed: Optional[int] = None) -> Instances:
    """Model Garden's ``create_training_instances`` on ``docs`` (the whole corpus), predictions too.

    ``docs.word_start`` says where whole words start (``do_whole_word_mask``);
    ``max_ngram_size`` None is the script's default (whole words or tokens, as 1); ``global_seed``
    (default ``random_seed``) seeds the n-gram size draws (Python's global ``random`` module in
    Model Garden's script).
    """
    _check_common(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                  dupe_factor)
    opts = check_options(mode="compat", reference="garden", max_ngram_size=max_ngram_size,
                         use_v2_feature_names=False, garden_global_seed=global_seed,
                         do_whole_word_mask=do_whole_word_mask, max_seq_length=max_seq_length,
                         random_seed=random_seed)
    sp = special_ids(tokenizer)
    out = _garden.build_garden(
        docs._as_dict(), _seed_key(random_seed), _seed_key(opts.global_seed), max_seq_length,
        max_predictions_per_seq, float(masked_lm_prob), float(short_seq_prob), dupe_factor,
        bool(do_whole_word_mask), opts.max_ngram_size or 1, sp["cls_id"], sp["sep_id"],
        sp["mask_id"], sp["rand_ids"])
    return Instances(**out)


def rename_v2_features(chunks: Iterable) -> Iterator[np.ndarray]:
    """Framed TFRecord chunks with Model Garden's v2 feature names (CRCs recomputed)."""
    renames = list(V2_FEATURE_NAMES)
    for chunk in chunks:
        yield _garden.rename_features(np.frombuffer(chunk, dtype=np.uint8), renames)


def reference(opts: GardenOptions) -> Reference:
    """Model Garden's script for ``compat.create_compat`` (``opts`` from ``check_options``)."""
    return Reference("compat, Model Garden", "compat:garden", MAX_INPUT_CHARS_PER_WORD,
                     functools.partial(_build, opts=opts),
                     rename_v2_features if opts.use_v2_feature_names else None)


def _build(docs: Documents, tokenizer: FullTokenizer, job: ShardJob, *,
           opts: GardenOptions) -> Instances:
    kwargs = job.build_kwargs()
    if not kwargs.pop("next_sentence"):  # create_instances refuses it for compat mode
        raise ValueError("Model Garden's script always builds sentence pairs (next_sentence)")
    return build_garden_instances(docs, tokenizer, max_ngram_size=opts.max_ngram_size,
                                  global_seed=opts.global_seed, **kwargs)
