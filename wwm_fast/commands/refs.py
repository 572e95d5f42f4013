"""``wwm-fast refs``: HuggingFace ``chinese_ref`` files for ``run_mlm_wwm.py``.

Turns flags into one ``make_refs`` call; it must not compute refs itself.
"""

from __future__ import annotations

import os
import sys

from ._flags import MAX_SEQ_LENGTH, add_bool_flag, int_flag, threads_flag

DESCRIPTION = """\
Write HuggingFace's chinese_ref file (the --train_ref_file of run_mlm_wwm.py, as
run_chinese_ref.py makes it): one JSON list per line, the token positions ([CLS] = 0) that
continue a Chinese whole word, by HF's rule (forward maximum matching against the line's set of
multi-character all-CJK words).

Inputs are text files segmented with --segmenter (same specs as `wwm-fast segment`), or
segmentation caches from `wwm-fast segment` (their segmentation is reused). Several inputs give
one output, in order.

Differences from run_chinese_ref.py: tokens are Google's (FullTokenizer), not HF's BertTokenizer
(they differ on private-use characters and words over 100 characters); words never contain
whitespace. Like run_chinese_ref.py, blank (empty or whitespace-only) lines are dropped by
default, which is what run_mlm_wwm.py pairs with its blank-dropped dataset; --blank_lines keep
writes [] for them instead, keeping one output line per input line.
"""


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("refs", help="HuggingFace chinese_ref files for run_mlm_wwm.py",
                              description=DESCRIPTION, formatter_class=formatter)
    p.add_argument("--input_file", required=True,
                   help="comma-separated globs of text files or segmentation caches")
    p.add_argument("--vocab_file", required=True, help="BERT vocab.txt")
    p.add_argument("--output_file", required=True, help="the ref file to write")
    p.add_argument("--segmenter", default=None,
                   help="ltp:PATH, ltp-neural:NAME, jieba, pre:DELIM (not needed for caches)")
    p.add_argument("--segmented_file", default=None,
                   help="with pre:DELIM: the segmented twin of each input file")
    add_bool_flag(p, "do_lower_case", True, "lower-case and strip accents (true for Chinese BERT)")
    p.add_argument("--max_seq_length", type=int_flag(3, MAX_SEQ_LENGTH, also=(0,)), default=512,
                   help="HF's max_length: tokens past max_seq_length - 2 are cut before "
                        "matching; 0 = no truncation")
    p.add_argument("--blank_lines", choices=["drop", "keep"], default="drop",
                   help="drop: like run_chinese_ref.py; keep: write [] (line-aligned output)")
    p.add_argument("--errors", choices=["strict", "ignore"], default="strict",
                   help="invalid UTF-8: 'strict' stops with file and line, 'ignore' drops bytes")
    p.add_argument("--num_threads", type=threads_flag(), default=1,
                   help="threads inside the segmenter; -1 = all cores")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..segmentation import make_refs

    n_in, n_out = make_refs(
        args.input_file, args.vocab_file, args.output_file, segmenter=args.segmenter,
        segmented_files=args.segmented_file, do_lower_case=args.do_lower_case,
        max_seq_length=args.max_seq_length, keep_blank=args.blank_lines == "keep",
        errors=args.errors, num_threads=args.num_threads)
    print(f"wrote {n_out:,} ref lines for {n_in:,} input lines to "
          f"{os.path.abspath(args.output_file)}", file=sys.stderr)
    return 0
