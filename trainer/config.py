"""`BertConfig`: the architecture, read from and written back to Google's `bert_config.json`, and
the Google variable names and shapes it implies (`google_variable_shapes`).

TensorFlow is imported only to read or write a remote path (gs://, ...): a local bert_config.json
is read with `open`, so `wwm-train export --format=hf` runs without TensorFlow.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any


def _open(path: str, mode: str):
    """`open` for a local path, TensorFlow's GFile for a remote one (gs://, s3://, hdfs://)."""
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.GFile(path, mode)
    return open(path, mode, encoding="utf-8")

_ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "tanh", "linear")


@dataclasses.dataclass
class BertConfig:
    """Architecture of a BERT model, field for field as Google's `bert_config.json`.

    `hidden_act="gelu"` is the exact erf form the released Google/HFL checkpoints were trained with;
    "gelu_tanh" is the tanh approximation later Google code (bert-tensorflow 1.0.4) switched to.
    Keys this trainer does not use (Google's Chinese config has `directionality`, `pooler_*`) are kept in
    `extra` and written back unchanged by `to_json_file`.
    """

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 16
    initializer_range: float = 0.02
    extra: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"bert config {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"bert config hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"bert config hidden_act must be one of {list(_ACTIVATIONS)}, "
                             f"got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"bert config {name} must be in [0, 1), got {value!r}")
        if not self.initializer_range > 0:
            raise ValueError(f"bert config initializer_range must be > 0, got {self.initializer_range!r}")

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "BertConfig":
        """Builds a config from a dict such as a parsed bert_config.json; unknown keys go to `extra`."""
        if "vocab_size" not in obj:
            raise ValueError(f"bert config needs 'vocab_size', got keys {sorted(obj)}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in obj.items() if k in names}
        extra = {k: v for k, v in obj.items() if k not in names}
        return cls(**known, extra=extra)

    @classmethod
    def from_json_file(cls, path: str) -> "BertConfig":
        """Reads a bert_config.json (local or gs:// path)."""
        with _open(path, "r") as f:
            text = f.read()
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"bert config file {path} is not valid JSON: {e}") from None
        return cls.from_dict(obj)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)
               if f.name != "extra"}
        out.update(copy.deepcopy(self.extra))
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str) -> None:
        with _open(path, "w") as f:
            f.write(self.to_json_string())

    @property
    def size_per_head(self) -> int:
        return self.hidden_size // self.num_attention_heads


def google_variable_shapes(config: BertConfig) -> dict[str, list[int]]:
    """Name -> shape of every variable in a Google BERT pre-training checkpoint for `config`.

    This is the list `tf.train.list_variables` shows for Google's `bert_model.ckpt` (without
    `global_step` and optimizer slots); the model creates exactly these variables, in this order.
    """
    h, i = config.hidden_size, config.intermediate_size
    shapes = {
        "bert/embeddings/word_embeddings": [config.vocab_size, h],
        "bert/embeddings/token_type_embeddings": [config.type_vocab_size, h],
        "bert/embeddings/position_embeddings": [config.max_position_embeddings, h],
        "bert/embeddings/LayerNorm/gamma": [h],
        "bert/embeddings/LayerNorm/beta": [h],
    }
    for n in range(config.num_hidden_layers):
        p = f"bert/encoder/layer_{n}/"
        for part in ("query", "key", "value"):
            shapes[p + f"attention/self/{part}/kernel"] = [h, h]
            shapes[p + f"attention/self/{part}/bias"] = [h]
        shapes[p + "attention/output/dense/kernel"] = [h, h]
        shapes[p + "attention/output/dense/bias"] = [h]
        shapes[p + "attention/output/LayerNorm/gamma"] = [h]
        shapes[p + "attention/output/LayerNorm/beta"] = [h]
        shapes[p + "intermediate/dense/kernel"] = [h, i]
        shapes[p + "intermediate/dense/bias"] = [i]
        shapes[p + "output/dense/kernel"] = [i, h]
        shapes[p + "output/dense/bias"] = [h]
        shapes[p + "output/LayerNorm/gamma"] = [h]
        shapes[p + "output/LayerNorm/beta"] = [h]
    shapes["bert/pooler/dense/kernel"] = [h, h]
    shapes["bert/pooler/dense/bias"] = [h]
    shapes["cls/predictions/transform/dense/kernel"] = [h, h]
    shapes["cls/predictions/transform/dense/bias"] = [h]
    shapes["cls/predictions/transform/LayerNorm/gamma"] = [h]
    shapes["cls/predictions/transform/LayerNorm/beta"] = [h]
    shapes["cls/predictions/output_bias"] = [config.vocab_size]
    shapes["cls/seq_relationship/output_weights"] = [2, h]
    shapes["cls/seq_relationship/output_bias"] = [2]
    return shapes
