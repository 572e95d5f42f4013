"""Google's create_pretraining_data.py (PyPI bert-tensorflow 1.0.4) as the reference, plus the two
test-only oracles the issue asks for:

* ``google_wwm_masking``: create_masked_lm_predictions of google-research/bert master (the version
  with --do_whole_word_mask, BERT_DATA_SPEC §2.3), written here from the spec and patched into
  1.0.4, which predates the flag;
* ``HFLMarkingTokenizer``: the HFL recipe (§5.1, §5.4) -- the tokens of each line are marked with
  "##" inside gold words (tokenizing each word separately; a line whose per-word tokens differ
  from its tokens is left unmarked, HFL's fallback), and the marks are stripped before the id
  lookup.

Both are independent of wwm_fast's code: they work on Google's token strings.
"""

from __future__ import annotations

import collections
import contextlib
import random

import numpy as np

from reference import google_tokenization, google_tokenizer

_MARK = "##\x00"  # a private mark: starts with "##" for Google's grouping, never a real token

MaskedLmInstance = collections.namedtuple("MaskedLmInstance", ["index", "label"])


def google_wwm_masking(tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng):
    """create_masked_lm_predictions with do_whole_word_mask=True (§2.3), from the spec."""
    cand_indexes = []
    for i, token in enumerate(tokens):
        if token == "[CLS]" or token == "[SEP]":
            continue
        if cand_indexes and token.startswith("##"):
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
    rng.shuffle(cand_indexes)
    output_tokens = list(tokens)
    num_to_predict = min(max_predictions_per_seq,
                         max(1, int(round(len(tokens) * masked_lm_prob))))
    masked_lms = []
    covered = set()
    for index_set in cand_indexes:
        if len(masked_lms) >= num_to_predict:
            break
        if len(masked_lms) + len(index_set) > num_to_predict:
            continue
        if any(i in covered for i in index_set):
            continue
        for index in index_set:
            covered.add(index)
            if rng.random() < 0.8:
                masked_token = "[MASK]"
            elif rng.random() < 0.5:
                masked_token = tokens[index]
            else:
                masked_token = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            output_tokens[index] = masked_token
            masked_lms.append(MaskedLmInstance(index=index, label=tokens[index]))
    masked_lms.sort(key=lambda x: x.index)
    return (output_tokens, [p.index for p in masked_lms], [p.label for p in masked_lms])


class HFLMarkingTokenizer:
    """Google's FullTokenizer whose tokenize() marks whole-word continuations (HFL recipe)."""

    def __init__(self, vocab_file, gold: dict):
        self._tok = google_tokenizer(vocab_file, True)
        self.vocab = self._tok.vocab
        self.inv_vocab = self._tok.inv_vocab
        self._gold = gold  # stripped raw line -> list of gold words

    def tokenize(self, line):
        tokens = self._tok.tokenize(line)
        words = self._gold.get(line)
        if not words:
            return tokens
        per_word = [self._tok.tokenize(w) for w in words]
        if [t for ws in per_word for t in ws] != tokens:
            return tokens  # cannot align: HFL falls back to plain grouping for the line
        marked = []
        for ws in per_word:
            for k, t in enumerate(ws):
                marked.append(t if k == 0 or t.startswith("##") else _MARK + t)
        return marked

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab[t[len(_MARK):] if t.startswith(_MARK) else t] for t in tokens]


@contextlib.contextmanager
def patched_masking(cpd, whole_word: bool):
    original = cpd.create_masked_lm_predictions
    if whole_word:
        cpd.create_masked_lm_predictions = google_wwm_masking
    try:
        yield
    finally:
        cpd.create_masked_lm_predictions = original


def run_google(input_files, output_files, vocab_file, *, max_seq_length, max_predictions_per_seq,
               dupe_factor, whole_word=False, tokenizer=None, random_seed=12345,
               masked_lm_prob=0.15, short_seq_prob=0.1):
    """create_training_instances + write_instance_to_example_files of bert-tensorflow 1.0.4."""
    google_tokenization()  # marks absl flags parsed
    from bert import create_pretraining_data as cpd

    tokenizer = tokenizer or google_tokenizer(vocab_file, True)
    with patched_masking(cpd, whole_word):
        rng = random.Random(random_seed)
        instances = cpd.create_training_instances(
            list(input_files), tokenizer, max_seq_length, dupe_factor, short_seq_prob,
            masked_lm_prob, max_predictions_per_seq, rng)
        cpd.write_instance_to_example_files(instances, tokenizer, max_seq_length,
                                            max_predictions_per_seq, list(output_files))
    return len(instances)


def tf_read(path, max_seq_length, max_predictions_per_seq, compression=None):
    """Every record of a file through tf.data + run_pretraining.py's parse spec (§4)."""
    import tensorflow as tf

    spec = {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    ds = tf.data.TFRecordDataset([str(path)], compression_type=compression)
    ds = ds.map(lambda r: tf.io.parse_single_example(r, spec)).batch(4096)
    out = {k: [] for k in spec}
    for batch in ds:
        for k in spec:
            out[k].append(batch[k].numpy())
    return {k: (np.concatenate(v) if v else np.zeros((0,) + tuple(spec[k].shape)))
            for k, v in out.items()}
