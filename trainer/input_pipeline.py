"""tf.data input: TFRecords written by `wwm-fast create` or Google's create_pretraining_data.py.

Parse spec = run_pretraining.py `input_fn_builder` (BERT_DATA_SPEC.md §4): FixedLenFeature
[max_seq_length] int64 for input_ids/input_mask/segment_ids, [max_predictions_per_seq] int64 for
masked_lm_positions/masked_lm_ids, [max_predictions_per_seq] float32 for masked_lm_weights,
[1] int64 for next_sentence_labels; int64 is cast to int32 (TPUs have no int64).

Training order is deterministic for a seed (files shuffled per epoch, deterministic interleave,
seeded record shuffle), so resuming can fast-forward to the exact example where a run stopped:
`skip_examples` drops that many records of this pipeline before batching (read, never parsed).
"""

from __future__ import annotations

import re

import tensorflow as tf

FEATURE_ORDER = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
                 "masked_lm_weights", "next_sentence_labels")


def expand_input_files(patterns: str | list[str]) -> list[str]:
    """Comma-separated glob patterns (local or gs://) -> sorted file list; error if one matches nothing."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    files = []
    for pattern in patterns:
        matched = tf.io.gfile.glob(pattern.strip())
        if not matched:
            raise ValueError(f"--input_file pattern {pattern!r} matches no file")
        files.extend(matched)
    if not files:
        raise ValueError("--input_file is empty")
    return sorted(set(files))


def feature_spec(max_seq_length: int, max_predictions_per_seq: int, use_nsp: bool = True):
    """run_pretraining.py's name_to_features (next_sentence_labels only when NSP is used)."""
    spec = {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
    }
    if use_nsp:
        spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def _sample_files(files: list[str], max_files: int) -> list[str]:
    if len(files) <= max_files:
        return list(files)
    step = (len(files) - 1) / (max_files - 1)
    return [files[round(i * step)] for i in range(max_files)]


def check_record_lengths(files: list[str], max_seq_length: int, max_predictions_per_seq: int,
                         use_nsp: bool = True, max_files: int = 8) -> None:
    """Reads the first record of up to `max_files` files (first, last, evenly spaced between) and
    checks every feature against the flags.

    Raises ValueError naming the file, the feature, the expected and the actual length, so a
    mismatch is reported before the model is built rather than as an opaque parse error. Empty
    files are skipped; all of them empty is an error.
    """
    flag_of = {"input_ids": ("--max_seq_length", max_seq_length),
               "input_mask": ("--max_seq_length", max_seq_length),
               "segment_ids": ("--max_seq_length", max_seq_length),
               "masked_lm_positions": ("--max_predictions_per_seq", max_predictions_per_seq),
               "masked_lm_ids": ("--max_predictions_per_seq", max_predictions_per_seq),
               "masked_lm_weights": ("--max_predictions_per_seq", max_predictions_per_seq),
               "next_sentence_labels": ("next_sentence_labels", 1)}
    if not use_nsp:
        del flag_of["next_sentence_labels"]
    checked = 0
    for path in _sample_files(files, max_files):
        first = None
        for record in tf.data.TFRecordDataset(path).take(1):
            first = record.numpy()
        if first is None:
            continue
        checked += 1
        features = tf.train.Example.FromString(first).features.feature
        for name, (flag, expected) in flag_of.items():
            if name not in features:
                raise ValueError(f"input file {path}: record has no feature {name!r} "
                                 f"(it has {sorted(features)})")
            kind = features[name].WhichOneof("kind")
            values = getattr(features[name], kind).value if kind else []
            if len(values) != expected:
                raise ValueError(
                    f"input file {path}: feature {name!r} has length {len(values)}, expected "
                    f"{expected} ({flag}={expected}); the records were made with other lengths "
                    f"than the flags")
    if not checked:
        raise ValueError(f"--input_file: the {len(files)} matching file(s) contain no record "
                         f"(checked {_sample_files(files, max_files)})")


def parse_error_message(error: Exception, max_seq_length: int, max_predictions_per_seq: int) -> str | None:
    """A readable message for tf.data's FixedLenFeature error on a record that slipped past
    `check_record_lengths` (a later file made with other flags), or None if it is another error."""
    match = re.search(r"Key: (\w+)\.\s+Can't parse serialized Example", str(error))
    if not match:
        return None
    name = match.group(1)
    if name in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
        flag = f"--max_predictions_per_seq={max_predictions_per_seq}"
    elif name == "next_sentence_labels":
        flag = "length 1"
    else:
        flag = f"--max_seq_length={max_seq_length}"
    return (f"a record in --input_file has feature {name!r} with another length than expected "
            f"({flag}) or missing: some input files were made with other flags")


def _decode(serialized, spec):
    example = tf.io.parse_single_example(serialized, spec)
    return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in example.items()}


def make_dataset(files: list[str], *, batch_size: int, max_seq_length: int,
                 max_predictions_per_seq: int, is_training: bool, use_nsp: bool = True,
                 seed: int = 12345, num_input_pipelines: int = 1, input_pipeline_id: int = 0,
                 skip_examples: int = 0, shuffle_buffer: int = 100, cycle_length: int = 4):
    """Batches of parsed features for one input pipeline (one host).

    Training: files sharded across pipelines (records are sharded when there are fewer files than
    pipelines), repeated forever with a new seeded file order each epoch, interleaved
    deterministically, shuffled with a seeded buffer of `shuffle_buffer` records (run_pretraining
    uses 100), `skip_examples` records dropped, parsed and batched with drop_remainder=True.
    Eval: the files in order, repeated (run_pretraining.py repeats eval input too).
    """
    spec = feature_spec(max_seq_length, max_predictions_per_seq, use_nsp)
    shard_files = len(files) >= num_input_pipelines
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    if num_input_pipelines > 1 and shard_files:
        ds = ds.shard(num_input_pipelines, input_pipeline_id)
    n_files = len(files[input_pipeline_id::num_input_pipelines]) if shard_files else len(files)
    if is_training:
        ds = ds.shuffle(max(n_files, 1), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, n_files),
                           block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if num_input_pipelines > 1 and not shard_files:
            ds = ds.shard(num_input_pipelines, input_pipeline_id)
        if shuffle_buffer > 1:
            ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
        if skip_examples:
            ds = ds.skip(skip_examples)
    else:
        ds = ds.flat_map(tf.data.TFRecordDataset)
        if num_input_pipelines > 1 and not shard_files:
            ds = ds.shard(num_input_pipelines, input_pipeline_id)
        ds = ds.repeat()
    ds = ds.map(lambda r: _decode(r, spec), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
