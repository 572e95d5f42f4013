"""``wwm-fast inspect``: decode BERT pre-training TFRecords to readable text, or summarise them.

Reads records only (any writer's: wwm-fast create, Google's script); it must not depend on how
they were made. The [MASK] id comes from ``--vocab_file`` when given.
"""

from __future__ import annotations

import json

from ..files import expand_input_files
from ._flags import add_bool_flag, int_flag

DESCRIPTION = """\
Decode pre-training TFRecords (from wwm-fast create or Google's create_pretraining_data.py):
each record as tokens with its masked positions marked, segments and the next-sentence label;
or, with --stats, a summary over every record of every file (checks every record's CRCs).

Masked positions are shown as [MASK](label) when the model sees [MASK], token(label) when it
sees a random token, and token(=) when it sees the original token. Without --vocab_file, ids are
shown and [MASK] is taken to be id 103 (as in Google's BERT vocabs). GZIP files are detected
automatically.
"""

# [MASK] in Google's BERT vocabs (Chinese, English cased/uncased, multilingual): used only when no
# vocab is given
GOOGLE_MASK_ID = 103


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("inspect", help="decode TFRecords to readable text, or --stats",
                              description=DESCRIPTION, formatter_class=formatter)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="TFRecord files or globs (comma-separated lists work too)")
    p.add_argument("--vocab_file", default=None,
                   help="vocab.txt: show tokens instead of ids, and take the [MASK] id from it "
                        f"(without it: {GOOGLE_MASK_ID}, Google's)")
    p.add_argument("--max_records", type=int_flag(1, 2 ** 31 - 1), default=3,
                   help="records to show per file (without --stats)")
    add_bool_flag(p, "stats", False, "summarise all records instead of printing them")
    add_bool_flag(p, "json", False, "with --stats: print the summary as JSON")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..tfrecord import read_examples  # (imported when run: numpy)

    files = expand_input_files(",".join(args.files))
    inv, mask_id = None, GOOGLE_MASK_ID
    if args.vocab_file:
        inv, mask_id = _read_vocab(args.vocab_file)
    if args.stats:
        summary = summarize(files, mask_id=mask_id)
        if args.json:
            print(json.dumps(summary, indent=1))
        else:
            print(_format_summary(summary))
        return 0
    if args.max_records < 1:
        raise ValueError(f"--max_records must be >= 1, got {args.max_records}")
    for path in files:
        for k, ex in enumerate(read_examples(path)):  # errors name the file and the record
            if k >= args.max_records:
                break
            _features(ex, path, k)  # a valid Example of other features: say so, with the record
            print(f"== {path} record {k} ==")
            print(format_example(ex, inv, mask_id=mask_id))
            print()
    return 0


def _read_vocab(vocab_file):
    """(id -> token, the [MASK] id) of ``vocab_file``."""
    from ..tokenization import load_vocab

    vocab = load_vocab(vocab_file)
    if "[MASK]" not in vocab:
        raise ValueError(f"--vocab_file {vocab_file!r} has no [MASK] token: is it a BERT vocab?")
    return {v: k for k, v in vocab.items()}, vocab["[MASK]"]


def _features(ex: dict, path="", k=0):
    try:
        return (ex["input_ids"], ex["input_mask"], ex["segment_ids"], ex["masked_lm_positions"],
                ex["masked_lm_ids"], ex["masked_lm_weights"], ex["next_sentence_labels"])
    except KeyError as e:
        raise ValueError(f"{path}: record {k}: not a BERT pre-training example (no feature {e}); "
                         f"features: {sorted(ex)}") from None


def format_example(ex: dict, inv=None, mask_id: int = GOOGLE_MASK_ID) -> str:
    ids, mask, seg, pos, labels, weights, nsp = _features(ex)
    length = int(mask.sum())
    n_pred = int((weights > 0).sum())
    name = (lambda i: inv.get(int(i), f"<{int(i)}>")) if inv else (lambda i: str(int(i)))
    predicted = {int(p): int(l) for p, l in zip(pos[:n_pred], labels[:n_pred])}
    shown = []
    for j in range(length):
        tok = name(ids[j])
        if j in predicted:
            label = predicted[j]
            if ids[j] == mask_id:
                tok = f"{name(mask_id)}({name(label)})"
            elif ids[j] == label:
                tok = f"{tok}(=)"
            else:
                tok = f"{tok}({name(label)})"
        shown.append(tok)
    label = int(nsp[0])
    lines = [
        "tokens:   " + " ".join(shown),
        "segments: " + "".join(str(int(s)) for s in seg[:length]),
        f"length {length}/{len(ids)}, predictions {n_pred}/{len(pos)}, "
        f"next_sentence_label {label} ({'random next' if label else 'actual next or no B'})",
    ]
    return "\n".join(lines)


def summarize(files, mask_id: int = GOOGLE_MASK_ID) -> dict:
    """Totals over every record of ``files`` (every CRC is verified while reading).

    Files are decoded one at a time, so memory follows the largest file, not the total.
    """
    import numpy as np

    from ..tfrecord import read_bert_records

    per_file, lengths, n_pred = {}, [], []
    shape = None
    counts = dict(mask=0, keep=0, random=0, random_next=0, single=0)
    for path in files:
        try:
            recs = read_bert_records(path)
        except ValueError as e:  # every message names the file (and the record when it can)
            raise (e if str(e).startswith(path) else ValueError(f"{path}: {e}")) from None
        per_file[path] = n = len(recs["input_ids"])
        if not n:
            continue
        this = (recs["input_ids"].shape[1], recs["masked_lm_positions"].shape[1])
        if shape is not None and this != shape:
            raise ValueError(f"{path}: max_seq_length/max_predictions {this} differ from the "
                             f"earlier files' {shape}")
        shape = this
        length = recs["input_mask"].sum(1)
        used = recs["masked_lm_weights"] > 0
        shown = recs["input_ids"][np.nonzero(used)[0], recs["masked_lm_positions"][used]]
        label = recs["masked_lm_ids"][used]
        counts["mask"] += int((shown == mask_id).sum())
        counts["keep"] += int(((shown == label) & (shown != mask_id)).sum())
        counts["random"] += int(((shown != label) & (shown != mask_id)).sum())
        counts["random_next"] += int(recs["next_sentence_labels"][:, 0].sum())
        in_seq = np.arange(this[0])[None, :] < length[:, None]
        counts["single"] += int((~(recs["segment_ids"].astype(bool) & in_seq).any(1)).sum())
        lengths.append(length)
        n_pred.append(used.sum(1))
        del recs
    n = sum(per_file.values())
    if n == 0:
        return {"files": per_file, "records": 0}
    lengths = np.concatenate(lengths)
    n_pred = np.concatenate(n_pred)
    total_pred = int(n_pred.sum())
    return {
        "files": per_file,
        "records": n,
        "max_seq_length": int(shape[0]),
        "max_predictions_per_seq": int(shape[1]),
        "mean_length": float(lengths.mean()),
        "full_length_fraction": float((lengths == shape[0]).mean()),
        "length_percentiles": {str(q): int(np.percentile(lengths, q)) for q in (5, 25, 50, 75, 95)},
        "tokens": int(lengths.sum()),
        "predictions": total_pred,
        "masked_fraction": total_pred / max(1, int(lengths.sum())),
        "mean_predictions": float(n_pred.mean()),
        "mask_fraction": counts["mask"] / max(1, total_pred),
        "keep_fraction": counts["keep"] / max(1, total_pred),
        "random_fraction": counts["random"] / max(1, total_pred),
        "random_next_fraction": counts["random_next"] / n,
        "single_segment_fraction": counts["single"] / n,
    }


def _format_summary(s: dict) -> str:
    if not s["records"]:
        return f"0 records in {len(s['files'])} file(s)"
    pct = s["length_percentiles"]
    return "\n".join([
        f"{s['records']:,} records in {len(s['files'])} file(s) (all CRCs valid); "
        f"max_seq_length {s['max_seq_length']}, max_predictions_per_seq "
        f"{s['max_predictions_per_seq']}",
        f"length: mean {s['mean_length']:.1f}, full {100 * s['full_length_fraction']:.1f}%, "
        f"percentiles 5/25/50/75/95 = {pct['5']}/{pct['25']}/{pct['50']}/{pct['75']}/{pct['95']}",
        f"predictions: {s['predictions']:,} ({100 * s['masked_fraction']:.2f}% of tokens, "
        f"{s['mean_predictions']:.2f} per record): [MASK] {100 * s['mask_fraction']:.1f}%, "
        f"kept {100 * s['keep_fraction']:.1f}%, random {100 * s['random_fraction']:.1f}%",
        f"next sentence: {100 * s['random_next_fraction']:.1f}% random next; single-segment "
        f"records {100 * s['single_segment_fraction']:.1f}%",
    ])


