"""What a ``create`` run reports: ``ShardStats`` per output shard, ``CreateStats`` for the run.

Owns the figures, how they are counted from a shard's documents and instances, their JSON form
(``<output>.stats.json`` beside each shard) and the run summary. It must not read input, build
instances or decide anything about resuming (wwm_fast/shard.py does); it imports no other stage (only the masking kernel's histogram length,
``WORD_SIZE_HIST_LEN``, the length of ``masked_group_hist``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import List

from .files import atomic_output
from . import _check_build  # noqa: F401
from ._masking import WORD_SIZE_HIST_LEN

__all__ = ["CreateStats", "ShardStats", "STATS_SUFFIX", "count_corpus",
           "count_instances", "stats_json", "write_stats"]

STATS_SUFFIX = ".stats.json"
# Why the random-next share is above 50%: Google's create_instances_from_document takes a random
# B for every chunk of one sentence (there is no actual next to pair with), for half of the others.
RANDOM_NEXT_NOTE = ("50% of the chunks of 2+ sentences; a one-sentence chunk always gets a random "
                    "B, as in Google's algorithm")


@dataclasses.dataclass
class ShardStats:
    """What one output shard holds (also written as ``<output>.stats.json``)."""

    input_files: List[str]
    output_file: str
    input_bytes: int = 0
    lines: int = 0
    documents: int = 0
    corpus_tokens: int = 0
    unk_tokens: int = 0
    instances: int = 0
    instance_tokens: int = 0  # incl. [CLS]/[SEP], excl. padding
    masked_tokens: int = 0
    mask_replaced: int = 0  # shown as [MASK]
    random_replaced: int = 0  # shown as a random token
    random_next: int = 0
    single_segment: int = 0
    word_continuations: int = 0  # corpus tokens that continue a whole word
    align_fallback_lines: int = 0
    masked_group_hist: List[int] = dataclasses.field(
        default_factory=lambda: [0] * WORD_SIZE_HIST_LEN)
    output_bytes: int = 0
    seconds: float = 0.0
    skipped: bool = False  # True: already complete from an earlier run
    fingerprint: str = ""

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["unk_rate"] = self.unk_tokens / self.corpus_tokens if self.corpus_tokens else 0.0
        d["random_next_fraction"] = self.random_next / self.instances if self.instances else 0.0
        d["masked_fraction"] = (self.masked_tokens / self.instance_tokens
                                if self.instance_tokens else 0.0)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ShardStats":
        """The stats ``to_json`` wrote (derived figures such as ``unk_rate`` are dropped)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


_TOTAL_FIELDS = ("input_bytes", "lines", "documents", "corpus_tokens", "unk_tokens", "instances",
                 "instance_tokens", "masked_tokens", "mask_replaced", "random_replaced",
                 "random_next", "single_segment", "word_continuations", "align_fallback_lines",
                 "output_bytes")


@dataclasses.dataclass
class CreateStats:
    """Totals of a ``create_instances`` run (``.total``), plus the per-shard stats."""

    shards: List[ShardStats]
    mode: str
    seconds: float

    @property
    def total(self) -> dict:
        t = {k: sum(getattr(s, k) for s in self.shards) for k in _TOTAL_FIELDS}
        t["masked_group_hist"] = [int(sum(v)) for v in zip(*(s.masked_group_hist
                                                                for s in self.shards))]
        t["unk_rate"] = t["unk_tokens"] / max(1, t["corpus_tokens"])
        t["random_next_fraction"] = t["random_next"] / max(1, t["instances"])
        t["masked_fraction"] = t["masked_tokens"] / max(1, t["instance_tokens"])
        return t

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.shards)

    @property
    def output_files(self) -> List[str]:
        return [s.output_file for s in self.shards]

    def to_json(self) -> dict:
        return {"mode": self.mode, "seconds": self.seconds, "total": self.total,
                "shards": [s.to_json() for s in self.shards]}

    def summary(self) -> str:
        t = self.total
        skipped = sum(s.skipped for s in self.shards)
        hist = t["masked_group_hist"]
        groups = ", ".join(f"{k}:{hist[k]}" for k in range(1, len(hist)) if hist[k])
        lines = [
            f"wrote {t['instances']:,} instances to {len(self.shards)} file(s) "
            f"({t['output_bytes'] / 1e6:.1f} MB) in {self.seconds:.2f} s"
            + (f"; {skipped} shard(s) were already complete" if skipped else ""),
            f"  input: {t['input_bytes'] / 1e6:.2f} MB, {t['lines']:,} lines, "
            f"{t['documents']:,} documents, {t['corpus_tokens']:,} tokens "
            f"([UNK] {100 * t['unk_rate']:.2f}%)",
            f"  masked: {t['masked_tokens']:,} of {t['instance_tokens']:,} instance tokens "
            f"({100 * t['masked_fraction']:.2f}%), [MASK] {_pct(t['mask_replaced'], t['masked_tokens'])}, "
            f"random {_pct(t['random_replaced'], t['masked_tokens'])}",
            f"  random next: {100 * t['random_next_fraction']:.1f}% of instances "
            f"({RANDOM_NEXT_NOTE}); whole-word continuations: {t['word_continuations']:,} tokens; "
            f"alignment fallback: {t['align_fallback_lines']:,} lines",
            f"  masked whole words by size: {groups}",
        ]
        return "\n".join(lines)


def _pct(a, b):
    return f"{100 * a / b:.1f}%" if b else "n/a"


# -- counting ----------------------------------------------------------------------------------------


def count_corpus(stats: ShardStats, docs, unk_id: int, n_fallback: int) -> None:
    """Corpus figures of ``docs`` (a ``Documents``) into ``stats``."""
    import numpy as np

    stats.documents = docs.n_documents
    stats.corpus_tokens = len(docs.ids)
    stats.unk_tokens = int(np.count_nonzero(docs.ids == unk_id))
    stats.word_continuations = int(len(docs.word_start) - np.count_nonzero(docs.word_start))
    stats.align_fallback_lines = int(n_fallback)


def count_instances(stats: ShardStats, inst, mask_id: int) -> None:
    """Instance and masking figures of ``inst`` (masked ``Instances``) into ``stats``."""
    import numpy as np

    pairs = inst.b_len > 0
    stats.instances = inst.n
    stats.instance_tokens = int(inst.a_len.sum() + inst.b_len.sum() + 2 * inst.n
                                + np.count_nonzero(pairs))
    stats.masked_tokens = len(inst.pred_positions)
    stats.mask_replaced = int(np.count_nonzero(inst.pred_input_ids == mask_id))
    stats.random_replaced = int(np.count_nonzero(
        (inst.pred_input_ids != inst.pred_labels) & (inst.pred_input_ids != mask_id)))
    stats.random_next = int(inst.next_label.sum())
    stats.single_segment = int(inst.n - np.count_nonzero(pairs))
    stats.masked_group_hist = [int(x) for x in inst.group_hist]


def stats_json(stats: ShardStats) -> str:
    """The text of ``<output>.stats.json``."""
    return json.dumps(stats.to_json(), indent=1, ensure_ascii=False) + "\n"


def write_stats(stats: ShardStats) -> None:
    """``<output>.stats.json`` beside a local output, written atomically (it marks the shard
    complete, so it is written after the output)."""
    with atomic_output(stats.output_file + STATS_SUFFIX, "w") as f:
        f.write(stats_json(stats))
