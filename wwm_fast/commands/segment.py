"""``wwm-fast segment``: segment corpus shards once into reusable segmentation caches.

Turns flags into one ``segment_files`` call and prints its report; it must not segment itself.
"""

from __future__ import annotations

import sys

from ._flags import add_bool_flag, threads_flag

DESCRIPTION = """\
Segment text shards into words once, and keep the result: one lossless segmentation cache per
input file (the original bytes + word boundaries) in --output_dir, named <input>.wwmseg.
`wwm-fast create --input_file 'OUTPUT_DIR/*.wwmseg'` reads them, so every phase and dupe pass
reuses one segmentation.

Segmenters (--segmenter):
  ltp:PATH             LTP legacy (perceptron): a cws model file or an LTP hub folder
                       (config.json + model files, as LTP/legacy is distributed)
  ltp-neural:NAME      neural LTP (LTP/tiny, a local folder); needs wwm-fast[ltp-neural]
  jieba                jieba, HMM on (jieba's default); jieba:nohmm
  pre:DELIM            pre-segmented text, words separated by DELIM (pre = one space); with
                       --segmented_file the words come from those files and must rebuild the
                       lines of --input_file (whitespace ignored)

--convert t2s segments an OpenCC-converted copy of each line (traditional -> simplified, for a
segmenter trained on simplified text such as LTP's models) and maps the words back onto the
original characters: the cache keeps the original text, only the word boundaries come from the
converted copy. Any OpenCC config is accepted (tw2s, hk2s, tw2sp, ...); needs wwm-fast[opencc].

Work is spread over --num_workers processes by chunks of lines; --num_threads threads inside
each LTP segmenter. A rerun skips shards whose cache is complete for the same segmenter, decode
policy and input; an interrupted run leaves no half-written cache.
"""


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("segment", help="segment shards once into segmentation caches",
                              description=DESCRIPTION, formatter_class=formatter)
    p.add_argument("--input_file", required=True,
                   help="comma-separated globs of UTF-8 text files (.gz is decompressed)")
    p.add_argument("--segmenter", required=True, help="ltp:PATH, ltp-neural:NAME, jieba, pre:DELIM")
    p.add_argument("--output_dir", required=True, help="folder for the .wwmseg caches")
    p.add_argument("--segmented_file", default=None,
                   help="with pre:DELIM: comma-separated globs of the segmented twin of each "
                        "input file (same order, line-aligned)")
    p.add_argument("--convert", default=None, metavar="CONFIG",
                   help="segment an OpenCC-converted copy of the text (t2s, tw2s, hk2s, ...) and "
                        "map the words back to the original characters; recorded in the caches")
    p.add_argument("--num_workers", type=threads_flag(), default=-1,
                   help="processes; -1 = all cores")
    p.add_argument("--num_threads", type=threads_flag(), default=1,
                   help="threads inside each LTP segmenter (-1 = all cores)")
    p.add_argument("--errors", choices=["strict", "ignore"], default="strict",
                   help="invalid UTF-8: 'strict' stops with file and line, 'ignore' drops the "
                        "bytes as Google's convert_to_unicode does")
    add_bool_flag(p, "overwrite", False, "segment again even where a matching cache exists")
    add_bool_flag(p, "compress", False, "zlib-compress the caches (level 1): about half the "
                  "size, but writing them takes ~8x longer")
    add_bool_flag(p, "progress", True, "progress bar on stderr (bytes of input)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..segmentation import segment_files

    report = segment_files(
        args.input_file, args.segmenter, args.output_dir, segmented_files=args.segmented_file,
        num_workers=args.num_workers, num_threads=args.num_threads, errors=args.errors,
        overwrite=args.overwrite, compress=args.compress, progress=args.progress,
        convert=args.convert)
    rate = report.n_chars / report.seconds / 1e6 if report.seconds > 0 else 0.0
    print(f"segmented {report.n_segmented} file(s), skipped {report.n_skipped} already done: "
          f"{report.n_lines:,} lines, {report.n_chars:,} chars, {report.n_words:,} words in "
          f"{report.seconds:.1f} s ({rate:.2f} M chars/s) with {report.segmenter}",
          file=sys.stderr)
    if report.n_unmatched:
        print(f"warning: {report.n_unmatched} line(s) where the segmenter's output did not match "
              f"the text got one word per character (no whole-word grouping)", file=sys.stderr)
    if report.n_convert_realigned:
        print(f"{report.n_convert_realigned} line(s) were aligned with their conversion (an "
              f"OpenCC phrase that changes length, or may)", file=sys.stderr)
    if report.n_convert_fallback:
        print(f"warning: {report.n_convert_fallback} line(s) whose conversion could not be "
              f"mapped back to the original were segmented unconverted", file=sys.stderr)
    return 0
