"""HuggingFace ``chinese_ref`` ids (``run_chinese_ref.py`` / ``run_mlm_wwm.py``), from any segmenter.

Owns the ``chinese_ref`` rule and ``make_refs`` (the refs command's runner); it must not change
what create writes (refs are a separate output for HuggingFace's trainer).

HF's rule (BERT_DATA_SPEC §5.2), per line:

1. the word set = the line's words of more than one character, every character CJK (Google's
   ``_is_chinese_char``, 8 ranges);
2. the line is tokenized with ``[CLS]`` at position 0 and truncated to ``max_seq_length`` tokens;
3. forward maximum matching over the tokens: at a token made only of CJK characters, the longest
   run of the next ``k >= 2`` tokens whose concatenation is in the set (``k`` at most the longest
   word) is marked: its tokens 2..k become ``##`` continuations, and the scan jumps past it;
4. ``ref_ids`` = the positions of the marked tokens (one CJK character each).

It is set-based, not positional: every occurrence of a word's characters in the line is marked,
even where the segmenter cut that occurrence differently (wwm_fast's own aligner is positional;
see BERT_DATA_SPEC §5.5 for how often they differ).

Differences from HF's script, all deliberate and documented in the segmentation README: the
tokens are Google's (``FullTokenizer``, the vocab's own strings) instead of HF's ``BertTokenizer``
(they differ on private-use characters and words over 100 characters, §1); the word set comes from
the given segmentation with whitespace never inside a word (HF's LTP words may carry glued spaces,
and such words never enter its set).
"""

from __future__ import annotations

import json
import re
from typing import Iterable, List, Optional, Sequence

import numpy as np

from .._cjk import CJK_RANGES
from ..alignment import WordSpans
from ..tokenization import Encoding, FullTokenizer

__all__ = ["chinese_ref_ids", "make_refs", "write_refs"]

_CJK_RE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in CJK_RANGES) + "]*")


def _all_cjk(text: str) -> bool:
    """Every character CJK (HF's ``is_chinese``; true for "")."""
    return _CJK_RE.fullmatch(text) is not None


class _VocabInfo:
    """Per-id facts about the vocab, computed once per tokenizer."""

    def __init__(self, tokenizer: FullTokenizer):
        size = max(tokenizer.vocab.values()) + 1
        self.strings: List[str] = [""] * size
        for token, index in tokenizer.vocab.items():
            self.strings[index] = token
        # a token that can start or continue a Chinese word: non-empty, every character CJK
        self.cjk = np.array([bool(s) and _all_cjk(s) for s in self.strings], dtype=bool)
        # a marked token is recorded when it is exactly one CJK character
        self.single = np.array([len(s) == 1 for s in self.strings], dtype=bool)


_INFO_CACHE: dict = {}


def _info(tokenizer: FullTokenizer) -> _VocabInfo:
    info = _INFO_CACHE.get(id(tokenizer))
    if info is None or info[0] is not tokenizer:
        info = (tokenizer, _VocabInfo(tokenizer))
        _INFO_CACHE.clear()
        _INFO_CACHE[id(tokenizer)] = info
    return info[1]


def chinese_ref_ids(tokenizer: FullTokenizer, lines: Sequence[str], words: WordSpans, *,
                    encoding: Optional[Encoding] = None,
                    max_seq_length: int = 512) -> List[List[int]]:
    """HF ``chinese_ref`` of each line: token positions (``[CLS]`` = 0) that continue a word.

    Parameters
    ----------
    tokenizer : FullTokenizer
    lines : list of str
        The lines (as ``decode_lines`` gives them).
    words : WordSpans
        Their segmentation (a segmenter's output or a cache's ``words``).
    encoding : Encoding, optional
        ``tokenizer``'s encoding of ``lines`` when already computed.
    max_seq_length : int, default 512
        HF's ``max_length``: tokens past ``max_seq_length - 2`` are cut before matching, as
        ``run_chinese_ref.py`` does; 0 = no truncation.
    """
    n = len(lines)
    if len(words.row_splits) != n + 1:
        raise ValueError(f"words cover {len(words.row_splits) - 1} lines but there are {n}")
    if max_seq_length < 0 or max_seq_length in (1, 2):
        raise ValueError(f"max_seq_length must be 0 (no truncation) or >= 3, "
                         f"got {max_seq_length}")
    if encoding is None:
        encoding = tokenizer.encode_batch(list(lines), num_threads=-1)
    if len(encoding.row_splits) != n + 1:
        raise ValueError(f"encoding covers {len(encoding.row_splits) - 1} lines but there are {n}")
    info = _info(tokenizer)
    out: List[List[int]] = [[] for _ in range(n)]
    t_rs = np.asarray(encoding.row_splits, dtype=np.int64)
    n_tokens = int(t_rs[-1])
    if n == 0 or n_tokens == 0:
        return out
    # Runs of consecutive CJK tokens (a match never crosses a non-CJK token: the set holds only
    # all-CJK strings), broken at line starts and at the truncation limit; only runs of >= 2
    # tokens can hold a multi-character word.
    ids = np.asarray(encoding.ids)
    flags = info.cjk[ids]
    line_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(t_rs))
    pos_in_line = np.arange(n_tokens, dtype=np.int64) - t_rs[line_of]
    if max_seq_length:
        flags &= pos_in_line < max_seq_length - 2
    prev = np.empty(n_tokens, dtype=bool)
    prev[0] = False
    prev[1:] = flags[:-1]
    prev[t_rs[:-1][np.diff(t_rs) > 0]] = False
    nxt = np.empty(n_tokens, dtype=bool)
    nxt[-1] = False
    nxt[:-1] = flags[1:]
    nxt[t_rs[1:][np.diff(t_rs) > 0] - 1] = False
    run_start = np.flatnonzero(flags & ~prev)
    run_end = np.flatnonzero(flags & ~nxt) + 1
    keep = run_end - run_start >= 2
    run_start, run_end = run_start[keep], run_end[keep]
    if not len(run_start):
        return out
    run_line = line_of[run_start].tolist()
    run_pos = pos_in_line[run_start].tolist()
    run_start = run_start.tolist()
    run_end = run_end.tolist()
    strings = info.strings
    single = info.single
    ids_list = ids.tolist()
    w_rs = words.row_splits.tolist()
    w_st = words.starts.tolist()
    w_en = words.ends.tolist()
    current = -1
    word_set: set = set()
    lengths: List[int] = []
    heads: set = set()
    for r in range(len(run_start)):
        i = run_line[r]
        if i != current:
            current = i
            line = lines[i]
            word_set = set()
            for s, e in zip(w_st[w_rs[i]:w_rs[i + 1]], w_en[w_rs[i]:w_rs[i + 1]]):
                if e - s > 1:
                    w = line[s:e]
                    if _CJK_RE.fullmatch(w) is not None:
                        word_set.add(w)
            lengths = sorted({len(w) for w in word_set}, reverse=True)
            heads = {w[:2] for w in word_set}
        if not lengths:
            continue
        run_ids = ids_list[run_start[r]:run_end[r]]
        toks = [strings[t] for t in run_ids]
        base = run_pos[r] + 1  # position of the run's first token, [CLS] = 0
        text = "".join(toks)
        if len(text) == len(toks):  # one character per token (always, with Google's tokenizer)
            _match_chars(text, word_set, lengths, heads, base, out[i])
        else:
            _match_tokens(toks, word_set, lengths[0], base, out[i], [single[t] for t in run_ids])
    return out


def _match_chars(text: str, word_set: set, lengths: List[int], heads: set, base: int,
                 refs: List[int]) -> None:
    """Forward maximum matching over a run of one-character tokens (HF's loop, same result):
    at each position the longest word of the set that starts there, else one step on. Only the
    lengths present in the set are tried, and only where a word's first two characters are."""
    start, end = 0, len(text)
    while start < end - 1:
        if text[start:start + 2] in heads:
            for k in lengths:
                if k <= end - start and text[start:start + k] in word_set:
                    refs.extend(range(base + start + 1, base + start + k))
                    start += k
                    break
            else:
                start += 1
        else:
            start += 1


def _match_tokens(toks: List[str], word_set: set, max_len: int, base: int, refs: List[int],
                  single: List[bool]) -> None:
    """HF's loop over windows of tokens (for vocabularies with multi-character CJK tokens)."""
    start, end = 0, len(toks)
    while start < end:
        for k in range(min(end - start, max_len), 1, -1):
            if "".join(toks[start:start + k]) in word_set:
                refs.extend(base + j for j in range(start + 1, start + k) if single[j])
                start += k
                break
        else:
            start += 1


def write_refs(out, refs: Iterable[List[int]], blank: Optional[Sequence[bool]] = None,
               keep_blank: bool = False) -> int:
    """Write one JSON list per line (``[2, 4, 6]``); HF's format. Returns lines written.

    ``blank[i]`` marks empty/whitespace-only input lines: dropped unless ``keep_blank`` (HF's
    ``run_chinese_ref.py`` drops them, and ``run_mlm_wwm.py`` pairs the ref file with its own
    blank-dropped dataset, so dropping is what HF's training script needs).
    """
    written = 0
    for i, r in enumerate(refs):
        if blank is not None and blank[i] and not keep_blank:
            continue
        out.write(json.dumps(r, separators=(", ", ": ")))
        out.write("\n")
        written += 1
    return written


def make_refs(input_files, vocab_file, output_file, *, segmenter: Optional[str] = None,
              segmented_files=None, do_lower_case: bool = True, max_seq_length: int = 512,
              keep_blank: bool = False, errors: str = "strict", num_threads: int = 1,
              batch_lines: int = 20_000):
    """Write HF's ``chinese_ref`` file for text files or segmentation caches (``wwm-fast refs``).

    Text inputs are segmented with ``segmenter`` (``pre:DELIM`` may take its words from
    ``segmented_files``, one per input); caches reuse their stored segmentation. Blank lines are
    dropped unless ``keep_blank``. Returns (input lines, lines written).
    """
    from ..files import atomic_output, decode_lines, expand_input_files, read_bytes
    from .cache import is_cache_file, read_cache
    from .registry import get_segmenter

    files = expand_input_files(input_files)
    seg_files = expand_input_files(segmented_files) if segmented_files else None
    if seg_files is not None and len(seg_files) != len(files):
        raise ValueError(f"segmented_file matches {len(seg_files)} files but input_file matches "
                         f"{len(files)}: give one segmented file per input file")
    tokenizer = FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    seg = None
    if not all(is_cache_file(p) for p in files):
        if segmenter is None:
            raise ValueError("text inputs need --segmenter (or segment them first with "
                             "`wwm-fast segment` and pass the caches)")
        seg = get_segmenter(segmenter, num_threads=num_threads)
        if seg_files is not None and seg.kind != "pre":
            raise ValueError("segmented_file is only used with a 'pre:DELIM' segmenter")
    n_in = n_out = 0
    with atomic_output(output_file, "w") as out:
        for k, path in enumerate(files):
            seg_lines = None
            if is_cache_file(path):
                shard = read_cache(path)
                lines = decode_lines(shard.data, shard.errors, shard.source)
                words_all = shard.words
            else:
                lines = decode_lines(read_bytes(path), errors, path)
                words_all = None
                if seg_files is not None:
                    seg_lines = decode_lines(read_bytes(seg_files[k]), errors, seg_files[k])
                    if len(seg_lines) != len(lines):
                        raise ValueError(
                            f"segmented file {seg_files[k]!r} has {len(seg_lines)} lines but "
                            f"input file {path!r} has {len(lines)}: they must be line-aligned")
            for a in range(0, len(lines), batch_lines):
                batch = lines[a:a + batch_lines]
                if words_all is not None:
                    words = _slice_spans(words_all, a, a + len(batch))
                elif seg_lines is not None:
                    words = seg.segment_batch(batch, segmented=seg_lines[a:a + batch_lines],
                                              source=path, segmented_source=seg_files[k],
                                              line_offset=a)
                else:
                    words = seg.segment_batch(batch, source=path, line_offset=a)
                enc = tokenizer.encode_batch(batch, num_threads=-1)
                refs = chinese_ref_ids(tokenizer, batch, words, encoding=enc,
                                       max_seq_length=max_seq_length)
                n_out += write_refs(out, refs, enc.blank.astype(bool), keep_blank)
                n_in += len(batch)
    return n_in, n_out


def _slice_spans(words: WordSpans, a: int, b: int) -> WordSpans:
    rs = words.row_splits[a:b + 1]
    lo, hi = int(rs[0]), int(rs[-1])
    return WordSpans(words.starts[lo:hi], words.ends[lo:hi], rs - lo)
