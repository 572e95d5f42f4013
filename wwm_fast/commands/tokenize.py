"""``wwm-fast tokenize``: WordPiece-tokenize text files, Google-exact, and report throughput.

A thin front of ``FullTokenizer``; it must not tokenize differently from the Python API.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from ..files import atomic_output, expand_input_files, read_bytes
from ._flags import add_bool_flag, threads_flag

DESCRIPTION = """\
Tokenize text files line by line exactly as Google's bert/tokenization.py FullTokenizer does
(same tokens, same ids), with the native kernel, and print the throughput.

Lines are split on \\n only and \\r is removed, as TensorFlow's GFile reads them. Output (optional)
has one line per input line: token ids (--output_format ids), tokens (tokens), or
token<TAB>start<TAB>end triples separated by spaces (offsets, code point offsets into the line).
"""


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("tokenize", help="WordPiece-tokenize text files (Google-exact)",
                              description=DESCRIPTION, formatter_class=formatter)
    p.add_argument("--input_file", required=True,
                   help="comma-separated globs of UTF-8 text files (.gz is decompressed)")
    p.add_argument("--vocab_file", required=True, help="BERT vocab.txt")
    add_bool_flag(p, "do_lower_case", True,
                  "lower-case and strip accents (true for Chinese BERT)")
    p.add_argument("--output_file", default=None,
                   help="write tokenized lines here (one output file for all inputs); "
                        "omit to only measure")
    p.add_argument("--output_format", choices=["ids", "tokens", "offsets"], default="ids",
                   help="what each output line holds: token ids, tokens, or "
                        "token<TAB>start<TAB>end")
    p.add_argument("--errors", choices=["strict", "ignore"], default="strict",
                   help="invalid UTF-8: 'strict' stops with file and line, 'ignore' drops the "
                        "bytes as Google's convert_to_unicode does")
    p.add_argument("--num_threads", type=threads_flag(), default=-1,
                   help="tokenizer threads; -1 = all cores")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..tokenization import FullTokenizer  # (imported when run: numpy)

    tokenizer = FullTokenizer(args.vocab_file, do_lower_case=args.do_lower_case)
    files = expand_input_files(args.input_file)
    total_bytes = total_lines = total_tokens = 0
    elapsed = 0.0
    out_ctx = (atomic_output(args.output_file, "w") if args.output_file
               else contextlib.nullcontext())
    with out_ctx as out:
        for path in files:
            data = read_bytes(path)
            t0 = time.perf_counter()
            enc = tokenizer.encode_file_bytes(data, source=path, errors=args.errors,
                                              num_threads=args.num_threads)
            elapsed += time.perf_counter() - t0
            total_bytes += len(data)
            total_lines += len(enc.row_splits) - 1
            total_tokens += len(enc.ids)
            if out is not None:
                _write(out, enc, tokenizer, args.output_format)
    mb = total_bytes / 1e6
    rate = mb / elapsed if elapsed > 0 else float("inf")
    print(f"tokenized {len(files)} file(s): {total_lines:,} lines, {total_tokens:,} tokens, "
          f"{mb:.2f} MB in {elapsed:.3f} s = {rate:.1f} MB/s "
          f"(num_threads={args.num_threads}, tokenizer only, excluding file reading)",
          file=sys.stderr)
    if args.output_file:
        print(f"wrote {os.path.abspath(args.output_file)}", file=sys.stderr)
    return 0


def _write(out, enc, tokenizer, fmt):
    splits = enc.row_splits
    ids = enc.ids
    if fmt == "ids":
        text = ids.astype(str)
        for i in range(len(splits) - 1):
            out.write(" ".join(text[splits[i]:splits[i + 1]]))
            out.write("\n")
        return
    inv = tokenizer.inv_vocab
    tokens = [inv[i] for i in ids.tolist()]
    for i in range(len(splits) - 1):
        lo, hi = int(splits[i]), int(splits[i + 1])
        if fmt == "tokens":
            out.write(" ".join(tokens[lo:hi]))
        else:
            out.write(" ".join(f"{tokens[j]}\t{enc.starts[j]}\t{enc.ends[j]}" for j in range(lo, hi)))
        out.write("\n")
