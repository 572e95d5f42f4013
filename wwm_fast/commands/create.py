"""``wwm-fast create``: BERT pre-training TFRecords with whole word masking.

Turns flags into one ``create_instances`` call and prints its summary; it must not validate or
compute anything ``create_instances`` does (the Python API and the CLI behave the same).

Takes the flags of Google's create_pretraining_data.py (same names, same defaults), so a pipeline
migrates by changing the command.
"""

from __future__ import annotations

import json
import sys
import warnings

from .._warnings import OutputWarning
from ..create import create_instances
from ._flags import (MAX_DUPE_FACTOR, MAX_SEED, MAX_SEQ_LENGTH, MAX_THREADS, add_bool_flag,
                     float_flag, int_flag, threads_flag)
from ._garden_flags import add_garden_flags, garden_kwargs

DESCRIPTION = """\
Create BERT pre-training data (TFRecords of tf.train.Example, the format run_pretraining.py and
wwm-train read) from text: one sentence per line, a blank line between documents.

Flags keep the names and defaults of Google's create_pretraining_data.py. Whole word masking
for Chinese needs word boundaries: give --segmenter (segments on the fly) or, better, segmentation
caches made once by `wwm-fast segment` as --input_file; with neither, --do_whole_word_mask groups
only WordPiece ## pieces, which is all Google's flag does for Chinese.

--mode fast (default) writes one output file per input shard, shards in parallel, byte-identical
for any --num_workers, resumable (a rerun skips complete shards). --mode compat reproduces Google's
script exactly (same seed -> same records), holding the whole corpus in memory as it does;
with --reference garden, TF Model Garden's fork of it (--max_ngram_size, --use_v2_feature_names,
--gzip_compress).

Example:
  wwm-fast create --input_file 'seg/*.wwmseg' --vocab_file chinese_L-12_H-768_A-12/vocab.txt \\
      --output_file out/train.tfrecord --max_seq_length 128 --dupe_factor 5 --do_whole_word_mask
"""


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("create", help="BERT pre-training TFRecords with whole word masking",
                              description=DESCRIPTION, formatter_class=formatter)
    g = p.add_argument_group("Google's flags (create_pretraining_data.py)")
    g.add_argument("--input_file", required=True,
                   help="comma-separated globs of text files (.gz ok) or segmentation caches")
    g.add_argument("--output_file", required=True,
                   help="comma-separated output files (compat: round-robin as Google; fast: one "
                        "per input shard, or one name that gets -NNNNN-of-NNNNN)")
    g.add_argument("--vocab_file", required=True, help="the BERT vocab.txt")
    add_bool_flag(g, "do_lower_case", True, "lower-case and strip accents (true for Chinese BERT)")
    add_bool_flag(g, "do_whole_word_mask", False,
                  "mask whole words (segmenter words for Chinese, ## groups otherwise)")
    g.add_argument("--max_seq_length", type=int_flag(5, MAX_SEQ_LENGTH), default=128,
                   help="tokens per instance, [CLS] and [SEP] included")
    g.add_argument("--max_predictions_per_seq", type=int_flag(1, MAX_SEQ_LENGTH), default=20,
                   help="masked positions per instance at most (<= max_seq_length)")
    g.add_argument("--random_seed", type=int_flag(0, MAX_SEED), default=12345,
                   help="the same seed and flags give the same records")
    g.add_argument("--dupe_factor", type=int_flag(1, MAX_DUPE_FACTOR), default=10,
                   help="number of times to duplicate the input data (with different masks)")
    g.add_argument("--masked_lm_prob", type=float_flag(0, 1, lo_open=True, hi_open=True),
                   default=0.15, help="share of the tokens of an instance that are predicted")
    g.add_argument("--short_seq_prob", type=float_flag(0, 1), default=0.1,
                   help="probability of creating sequences shorter than the maximum length")
    w = p.add_argument_group("wwm_fast")
    w.add_argument("--mode", choices=["fast", "compat"], default="fast",
                   help="fast: sharded, parallel, keyed RNG; compat: the exact records of "
                        "Google's script (or Model Garden's: --reference garden)")
    w.add_argument("--segmenter", default=None,
                   help="segment raw text on the fly for whole word masking: 'ltp:PATH' (LTP "
                        "legacy model file or folder), 'ltp-neural:NAME_OR_PATH', 'jieba', "
                        "'pre:DELIM' (already segmented); implies --do_whole_word_mask")
    add_bool_flag(w, "next_sentence", True,
                  "build sentence pairs with next-sentence labels; false = single segments from "
                  "consecutive sentences, no NSP (RoBERTa-wwm-ext), fast mode only")
    w.add_argument("--num_workers", type=int_flag(1, MAX_THREADS), default=None,
                   help="worker processes, one input shard each (default: cores, <= shards)")
    w.add_argument("--num_threads", type=threads_flag(), default=None,
                   help="threads per worker for tokenization, masking and serialization; -1 = "
                        "all cores "
                        "(default: cores // workers in fast mode, all cores in compat mode, 1 with "
                        "--runner beam; output bytes do not depend on it)")
    add_bool_flag(w, "gzip", False, "GZIP-compress the TFRecords (compression_type='GZIP')")
    w.add_argument("--errors", choices=["strict", "ignore"], default="strict",
                   help="invalid UTF-8: stop with file and line, or drop the bytes as Google's "
                        "convert_to_unicode does")
    add_bool_flag(w, "overwrite", False, "redo shards that an earlier run completed")
    w.add_argument("--stats_file", default=None, help="also write the run's totals as JSON here")
    w.add_argument("--runner", choices=["local", "beam"], default="local",
                   help="local: a process pool; beam: an Apache Beam pipeline over the shards "
                        "(pip install 'wwm-fast[beam]'), same output bytes")
    w.add_argument("--beam_runner", default=None,
                   help="Beam runner (DirectRunner/PrismRunner locally, DataflowRunner, "
                        "FlinkRunner, SparkRunner); other Beam pipeline options go after '--'")
    add_bool_flag(w, "progress", True, "show a progress bar on stderr")
    add_garden_flags(p)
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_OPTION",
                   help="after '--': Beam pipeline options, e.g. --project, --region, "
                        "--temp_location, --setup_file (with --runner beam)")
    p.set_defaults(func=run)
    return p


def _beam_options(args):
    options = list(args.beam_args or [])
    if args.beam_args and args.runner != "beam":
        raise ValueError(f"Beam options {args.beam_args} given without --runner beam")
    if args.beam_runner:
        if args.runner != "beam":
            raise ValueError("--beam_runner needs --runner beam")
        options.insert(0, f"--runner={args.beam_runner}")
    return options


def run(args) -> int:
    with warnings.catch_warnings(record=True) as caught:  # shown after the summary
        warnings.simplefilter("always", OutputWarning)
        stats = _create(args)
    print(stats.summary(), file=sys.stderr)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if args.stats_file:
        from ..files import atomic_output
        with atomic_output(args.stats_file, "w") as f:
            json.dump(stats.to_json(), f, indent=1, ensure_ascii=False)
    return 0


def _create(args):
    return create_instances(
        args.input_file, args.vocab_file, args.output_file,
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        masked_lm_prob=args.masked_lm_prob, short_seq_prob=args.short_seq_prob,
        dupe_factor=args.dupe_factor, random_seed=args.random_seed,
        do_lower_case=args.do_lower_case, do_whole_word_mask=args.do_whole_word_mask,
        segmenter=args.segmenter, mode=args.mode, next_sentence=args.next_sentence,
        num_workers=args.num_workers, num_threads=args.num_threads, gzip=args.gzip,
        errors=args.errors, overwrite=args.overwrite, progress=args.progress,
        runner=args.runner, beam_options=_beam_options(args), **garden_kwargs(args))
