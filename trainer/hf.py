"""HuggingFace transformers folders: the export to them and the start from them.

This module owns the bridge between Google's TF1 variable names (the only names the trainer
uses) and a transformers BERT folder:

* the name table: `bert/encoder/layer_3/attention/self/query/kernel` <->
  `bert.encoder.layer.3.attention.self.query.weight`, built from the config (layers). Dense
  kernels are transposed (TF stores [in, out], torch.nn.Linear [out, in]); embedding tables,
  LayerNorm and `cls/seq_relationship/output_weights` ([2, hidden] in both) are not;
* `config.json` from `bert_config.json` and back (`hidden_act`: Google's erf `gelu` -> `gelu`,
  the tanh approximation `gelu_tanh` -> `gelu_new`);
* `vocab.txt`, `tokenizer_config.json` and `special_tokens_map.json`, so that
  `AutoTokenizer.from_pretrained(folder)` is a lower-casing `BertTokenizer` that splits Chinese
  characters;
* the safetensors format, written and read here with numpy alone, one tensor at a time (no
  torch, no memory map): an export or an import holds at most a tensor or two besides the model.
  `pytorch_model.bin` is read with torch when it is installed.

The MLM decoder is tied to the word embeddings (as in Google's model), so the folder holds no
`cls.predictions.decoder.*`, as transformers 5 writes it itself; on reading, a decoder weight that
equals the word embeddings is taken as the tie, one that differs is reported.

TensorFlow is not imported here: checkpoint.py feeds the writer from TF checkpoints (read with
tf_bundle.py, without TensorFlow, when they are local) and assigns what the reader returns.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import uuid
from typing import Callable

import numpy as np

from .config import BertConfig

log = logging.getLogger("wwm_trainer")

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_NAME = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFETENSORS_NAME, SAFETENSORS_INDEX, TORCH_NAME, TORCH_INDEX)
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}
ARCHITECTURES = ("BertForPreTraining", "BertForMaskedLM", "BertModel")

# bert_config.json hidden_act -> transformers ACT2FN name, and back (several HF names are one form)
_ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "tanh": "tanh",
              "linear": "linear"}
_ACT_FROM_HF = {"gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_tanh",
                "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "relu": "relu",
                "tanh": "tanh", "linear": "linear"}
# config.json keys that fix the shapes or the maths, compared with --bert_config_file on import
_MUST_AGREE = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size")

_NEEDS_TORCH = ("reading {path} needs PyTorch, which is not installed: pip install "
                "'wwm-fast[hf]' (or the torch build of your choice), or convert the folder to "
                "model.safetensors")


class HFFormatError(ValueError):
    """A transformers folder or file that cannot be read as a BERT model (names the file)."""


# ============================================================================ names
def google_to_hf_name(name: str) -> tuple[str, bool]:
    """(transformers name, transpose) of one Google variable name of BERT pre-training.

    bert/embeddings/word_embeddings            -> bert.embeddings.word_embeddings.weight
    bert/encoder/layer_0/.../query/kernel      -> bert.encoder.layer.0.....query.weight (T)
    .../LayerNorm/gamma, beta                  -> .../LayerNorm.weight, .bias
    cls/predictions/output_bias                -> cls.predictions.bias
    cls/seq_relationship/output_weights [2, H] -> cls.seq_relationship.weight [2, H] (no T)
    """
    if name == "cls/predictions/output_bias":
        return "cls.predictions.bias", False
    if name == "cls/seq_relationship/output_weights":
        return "cls.seq_relationship.weight", False
    if name == "cls/seq_relationship/output_bias":
        return "cls.seq_relationship.bias", False
    parts = name.split("/")
    leaf = parts[-1]
    scope = ".".join(re.sub(r"^layer_(\d+)$", r"layer.\1", p) for p in parts[:-1])
    if leaf == "kernel":
        return f"{scope}.weight", True
    if leaf in ("gamma", "beta"):
        return f"{scope}.{'weight' if leaf == 'gamma' else 'bias'}", False
    if leaf == "bias":
        return f"{scope}.bias", False
    if leaf.endswith("_embeddings"):
        return f"{scope}.{leaf}.weight", False
    raise ValueError(f"no transformers name for Google variable {name!r}")


def name_table(google_shapes: dict[str, list[int]]) -> dict[str, tuple[str, bool, list[int]]]:
    """Google name -> (transformers name, transpose, transformers shape) for every variable of
    `google_shapes` (e.g. `google_variable_shapes(config)`), in that order."""
    table = {}
    for name, shape in google_shapes.items():
        hf, transpose = google_to_hf_name(name)
        table[name] = (hf, transpose, list(reversed(shape)) if transpose else list(shape))
    return table


def _architecture_names(table: dict, architecture: str) -> dict[str, str]:
    """Google name -> name in the file for the weights `architecture` holds. BertForMaskedLM has
    no pooler and no NSP head; BertModel no heads and no `bert.` prefix (as its save_pretrained)."""
    out = {}
    for google, (hf, _, _) in table.items():
        if architecture == "BertForMaskedLM" and google.startswith(("bert/pooler/", "cls/seq_relationship/")):
            continue
        if architecture == "BertModel":
            if google.startswith("cls/"):
                continue
            hf = hf[len("bert."):]
        out[google] = hf
    return out


# ============================================================================ safetensors
# https://github.com/huggingface/safetensors#format: u64 little-endian header length N, N bytes
# of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}} (padded
# with spaces), then the tensors' bytes, offsets relative to the end of the header.
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
              "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?", "U16": "<u2", "U32": "<u4",
              "U64": "<u8"}
_ST_FLOAT = ("F64", "F32", "F16", "BF16")
_MAX_HEADER = 100 * 1024 * 1024


def write_safetensors(path: str, names_shapes: list[tuple[str, list[int]]],
                      get: Callable[[str], np.ndarray], metadata: dict | None = None) -> None:
    """Writes float32 tensors as a safetensors file, one at a time: `get(name)` is called once per
    name, in the order given, and must return an array of that shape. Peak memory is one tensor
    (plus its float32 copy when it is not already contiguous float32)."""
    header, offset = {}, 0
    for name, shape in names_shapes:
        size = 4 * math.prod(shape)
        header[name] = {"dtype": "F32", "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for name, shape in names_shapes:
            value = np.ascontiguousarray(get(name), dtype="<f4")
            if list(value.shape) != [int(d) for d in shape]:
                raise ValueError(f"tensor {name!r} has shape {list(value.shape)}, expected {shape}")
            if value.size:
                f.write(memoryview(value).cast("B"))


class SafetensorsFile:
    """The header of a safetensors file, checked; `read(name)` reads one tensor as float32 with
    plain file reads (no memory map, so only the tensors read are held in memory)."""

    def __init__(self, path: str):
        self.path = path
        try:
            file_size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise HFFormatError(f"{path} is not a safetensors file: {file_size} bytes, "
                                        f"shorter than the 8-byte header length")
                n = int.from_bytes(head, "little")
                if n > min(_MAX_HEADER, file_size - 8):
                    raise HFFormatError(f"{path} is not a valid safetensors file: header length "
                                        f"{n} exceeds the file size {file_size} (truncated or "
                                        f"not safetensors)")
                raw = f.read(n)
        except OSError as e:
            raise HFFormatError(f"cannot read {path}: {e}") from None
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HFFormatError(f"{path} is not a valid safetensors file: its header is not "
                                f"JSON ({e})") from None
        if not isinstance(header, dict):
            raise HFFormatError(f"{path} is not a valid safetensors file: the header is a "
                                f"{type(header).__name__}, not an object")
        self.metadata = header.pop("__metadata__", None) or {}
        self.data_start = 8 + n
        data_size = file_size - self.data_start
        self.entries = {}
        for name, info in header.items():
            try:
                dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
                ok = (isinstance(dtype, str) and all(isinstance(d, int) and d >= 0 for d in shape)
                      and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end)
            except (TypeError, KeyError, ValueError):
                ok = False
            if not ok:
                raise HFFormatError(f"{path} is not a valid safetensors file: bad header entry "
                                    f"for {name!r}: {info!r}")
            if end > data_size:
                raise HFFormatError(f"{path} is truncated: tensor {name!r} ends at byte {end} of "
                                    f"the data, which has {data_size} bytes")
            if dtype in _ST_DTYPES and end - begin != np.dtype(_ST_DTYPES[dtype]).itemsize * math.prod(shape):
                raise HFFormatError(f"{path} is not a valid safetensors file: tensor {name!r} "
                                    f"({dtype} {shape}) has {end - begin} bytes")
            self.entries[name] = (dtype, list(shape), begin, end)

    def shape(self, name: str) -> list[int]:
        return self.entries[name][1]

    def read(self, name: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        """The tensor as float32; `rows=(start, stop)`: only those rows (first axis)."""
        dtype, shape, begin, end = self.entries[name]
        if dtype not in _ST_FLOAT:
            raise HFFormatError(f"{self.path}: tensor {name!r} has dtype {dtype}, expected a "
                                f"floating type ({', '.join(_ST_FLOAT)})")
        np_dtype = np.dtype(_ST_DTYPES[dtype])
        if rows is not None:
            row = math.prod(shape[1:])
            begin += rows[0] * row * np_dtype.itemsize
            shape = [rows[1] - rows[0]] + shape[1:]
        with open(self.path, "rb") as f:
            f.seek(self.data_start + begin)
            value = np.fromfile(f, dtype=np_dtype, count=math.prod(shape))
        if value.size != math.prod(shape):
            raise HFFormatError(f"{self.path} is truncated: tensor {name!r} is incomplete")
        if dtype == "BF16":  # the high half of a float32
            value = (value.astype("<u4") << 16).view("<f4")
        return value.astype(np.float32, copy=False).reshape(shape)


# ============================================================================ config
def hf_config_dict(config: BertConfig, architecture: str = "BertForPreTraining",
                   pad_token_id: int = 0) -> dict:
    """config.json of a transformers BERT model equal to `config` (Google's BERT: LayerNorm
    epsilon 1e-12, absolute positions, decoder tied to the word embeddings). Keys of
    bert_config.json that transformers does not know (`directionality`, `pooler_*`) are kept."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")
    out = dict(config.extra)
    out.update({
        "architectures": [architecture],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": _ACT_TO_HF[config.hidden_act],
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": 1e-12,
        "pad_token_id": pad_token_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        "dtype": "float32",
    })
    return dict(sorted(out.items()))


def read_hf_config(folder: str) -> dict:
    """config.json of a folder, checked to be a BERT model (model_type `bert` or absent)."""
    path = os.path.join(folder, CONFIG_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise HFFormatError(f"{folder} has weights but no {CONFIG_NAME}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HFFormatError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise HFFormatError(f"{path} is not a JSON object")
    model_type = obj.get("model_type", "bert")
    if model_type != "bert":
        raise HFFormatError(
            f"{path}: model_type is {model_type!r}, not 'bert'. Only BERT folders map onto this "
            f"model (RoBERTa has a BPE vocab and other names, ALBERT factorised, shared layers); "
            f"HFL's chinese-roberta-wwm-ext models are model_type 'bert' and load")
    for key in ("position_embedding_type",):
        if obj.get(key, "absolute") != "absolute":
            raise HFFormatError(f"{path}: {key} is {obj[key]!r}; this model has absolute "
                                f"position embeddings only")
    return obj


def bert_config_from_hf(folder: str) -> BertConfig:
    """The bert_config.json equivalent of a folder's config.json."""
    obj = read_hf_config(folder)
    path = os.path.join(folder, CONFIG_NAME)
    act = obj.get("hidden_act", "gelu")
    if act not in _ACT_FROM_HF:
        raise HFFormatError(f"{path}: hidden_act {act!r} has no bert_config.json equivalent "
                            f"(known: {sorted(_ACT_FROM_HF)})")
    fields = {k: obj[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers",
                                  "num_attention_heads", "intermediate_size",
                                  "hidden_dropout_prob", "attention_probs_dropout_prob",
                                  "max_position_embeddings", "type_vocab_size",
                                  "initializer_range") if k in obj}
    if "vocab_size" not in fields:
        raise HFFormatError(f"{path} has no vocab_size")
    try:
        return BertConfig(**fields, hidden_act=_ACT_FROM_HF[act])
    except (TypeError, ValueError) as e:
        raise HFFormatError(f"{path}: {e}") from None


def check_config_agrees(folder: str, obj: dict, expected: dict, what: str) -> None:
    """Raises if config.json disagrees with the model on a size (names file, key, both values);
    warns where only the maths would differ (activation, LayerNorm epsilon)."""
    path = os.path.join(folder, CONFIG_NAME)
    for key in _MUST_AGREE:
        if key in obj and key in expected and obj[key] != expected[key]:
            raise HFFormatError(f"{path}: {key} is {obj[key]!r}, but {what} has {expected[key]!r}")
    act = obj.get("hidden_act")
    if act is not None and "hidden_act" in expected and _ACT_FROM_HF.get(act) != expected["hidden_act"]:
        log.warning("%s: hidden_act is %r, %s has %r: the weights load, but the model computes "
                    "with %r", path, act, what, expected["hidden_act"], expected["hidden_act"])
    eps = obj.get("layer_norm_eps", 1e-12)
    if eps != 1e-12:
        log.warning("%s: layer_norm_eps is %r; this model uses Google's 1e-12", path, eps)


# ============================================================================ tokenizer files
def read_vocab(vocab_file: str) -> bytes:
    with open(vocab_file, "rb") as f:
        return f.read()


def vocab_entries(vocab: bytes) -> list[str]:
    """Entries split on '\\n' only (the Chinese vocab holds U+2028 inside two entries)."""
    lines = vocab.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in lines]


def tokenizer_files(vocab: bytes, vocab_file: str, config: BertConfig,
                    do_lower_case: bool = True) -> dict[str, bytes]:
    """vocab.txt, tokenizer_config.json, special_tokens_map.json of a BertTokenizer for `vocab`.
    The special tokens must be in the vocab; [PAD]'s id becomes config.json's pad_token_id."""
    entries = vocab_entries(vocab)
    if len(entries) != config.vocab_size:
        raise ValueError(f"vocab file {vocab_file} has {len(entries)} entries, bert config "
                         f"vocab_size is {config.vocab_size}")
    index = {}
    for i, e in enumerate(entries):
        index.setdefault(e, i)
    lacking = [t for t in SPECIAL_TOKENS.values() if t not in index]
    if lacking:
        raise ValueError(f"vocab file {vocab_file} lacks the special token(s) {lacking}, which a "
                         f"BERT tokenizer needs")
    tok_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": bool(do_lower_case),
                  "tokenize_chinese_chars": True, "strip_accents": None,
                  "model_max_length": config.max_position_embeddings, **SPECIAL_TOKENS}
    return {
        "vocab.txt": vocab,
        "tokenizer_config.json": _json_bytes(tok_config),
        "special_tokens_map.json": _json_bytes(SPECIAL_TOKENS),
        "_pad_token_id": index["[PAD]"],
    }


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


# ============================================================================ write a folder
def write_folder(export_dir: str, config: BertConfig, google_shapes: dict[str, list[int]],
                 get: Callable[[str], np.ndarray], vocab_file: str, *,
                 do_lower_case: bool = True, architecture: str = "BertForPreTraining") -> str:
    """Writes a transformers folder: model.safetensors (from `get(google_name)`, one tensor at a
    time), config.json, vocab.txt, tokenizer_config.json, special_tokens_map.json.

    Atomic: everything goes into a temporary sibling folder, renamed to `export_dir` at the end;
    `export_dir` must not exist or be empty. A failure leaves nothing under `export_dir`."""
    if "://" in export_dir:
        raise ValueError(f"--export_dir {export_dir}: the transformers format is written to a "
                         f"local folder only (copy it to remote storage afterwards)")
    export_dir = os.path.normpath(export_dir)
    if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or os.listdir(export_dir)):
        raise ValueError(f"--export_dir {export_dir} already exists and is not an empty folder; "
                         f"remove it or choose another")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")
    files = tokenizer_files(read_vocab(vocab_file), vocab_file, config, do_lower_case)
    pad_id = files.pop("_pad_token_id")
    table = name_table(google_shapes)
    in_file = _architecture_names(table, architecture)
    order = sorted(in_file, key=lambda g: in_file[g])
    hf_to_google = {in_file[g]: g for g in order}

    def get_hf(hf_name):
        google = hf_to_google[hf_name]
        value = get(google)
        return value.T if table[google][1] else value

    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(export_dir)}.tmp-{uuid.uuid4().hex[:12]}")
    os.makedirs(tmp)
    try:
        write_safetensors(os.path.join(tmp, SAFETENSORS_NAME),
                          [(in_file[g], table[g][2]) for g in order], get_hf,
                          metadata={"format": "pt"})
        with open(os.path.join(tmp, CONFIG_NAME), "wb") as f:
            f.write(_json_bytes(hf_config_dict(config, architecture, pad_id)))
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        if os.path.isdir(export_dir):
            os.rmdir(export_dir)  # empty (checked above): rename needs the name free
        os.rename(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return export_dir


# ============================================================================ read a folder
def is_hf_folder(path: str) -> bool:
    """A local folder holding config.json or a transformers weights file, and no TF checkpoint
    state file: what `--init_checkpoint` and `export --checkpoint` read as a transformers folder."""
    if "://" in path or not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    if "checkpoint" in names:
        return False
    return CONFIG_NAME in names or any(n in names for n in WEIGHT_FILES)


def _normalise_hf_name(name: str) -> str:
    """Old and BertModel spellings -> BertForPreTraining's: no `bert.` prefix (BertModel's save),
    LayerNorm.gamma/beta (pytorch-pretrained-bert)."""
    if name.startswith(("embeddings.", "encoder.", "pooler.")):
        name = "bert." + name
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    return re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)


class _TorchFile:
    """A pytorch_model.bin state dict (torch.load, weights only, memory-mapped when it can be)."""

    def __init__(self, path: str):
        try:
            import torch
        except ImportError:
            raise HFFormatError(_NEEDS_TORCH.format(path=path)) from None
        self.path = path
        try:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                state = torch.load(path, map_location="cpu", weights_only=True)  # legacy format
        except Exception as e:  # torch raises many kinds on a bad file
            raise HFFormatError(f"cannot read {path} as a PyTorch state dict: {e}") from None
        if not isinstance(state, dict):
            raise HFFormatError(f"{path} holds a {type(state).__name__}, not a state dict")
        self._state = {k: v for k, v in state.items() if hasattr(v, "shape")}
        self.entries = {k: None for k in self._state}

    def shape(self, name: str) -> list[int]:
        return list(self._state[name].shape)

    def read(self, name: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        value = self._state[name]
        if rows is not None:
            value = value[rows[0]:rows[1]]
        if not value.is_floating_point():
            raise HFFormatError(f"{self.path}: tensor {name!r} has dtype {value.dtype}, expected "
                                f"a floating type")
        return value.detach().float().numpy().copy()


def _weight_files(folder: str) -> list:
    """The readers of a folder's weights: model.safetensors, its sharded index, or (with torch)
    pytorch_model.bin / its index, in transformers' order of preference."""
    def shards(index_name, opener):
        path = os.path.join(folder, index_name)
        try:
            with open(path, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted(set(weight_map.values()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise HFFormatError(f"{path} is not a valid weight index ({type(e).__name__}: {e})") from None
        readers = []
        for name in files:
            shard = os.path.join(folder, name)
            if not os.path.isfile(shard):
                raise HFFormatError(f"{path} names shard {name}, which is not in {folder}")
            readers.append(opener(shard))
        for tensor, name in weight_map.items():
            reader = readers[files.index(name)]
            if tensor not in reader.entries:
                raise HFFormatError(f"{path} puts {tensor!r} in {name}, which does not hold it")
        return readers

    if os.path.isfile(os.path.join(folder, SAFETENSORS_NAME)):
        return [SafetensorsFile(os.path.join(folder, SAFETENSORS_NAME))]
    if os.path.isfile(os.path.join(folder, SAFETENSORS_INDEX)):
        return shards(SAFETENSORS_INDEX, SafetensorsFile)
    if os.path.isfile(os.path.join(folder, TORCH_NAME)):
        return [_TorchFile(os.path.join(folder, TORCH_NAME))]
    if os.path.isfile(os.path.join(folder, TORCH_INDEX)):
        return shards(TORCH_INDEX, _TorchFile)
    others = sorted(n for n in os.listdir(folder)
                    if n.endswith((".h5", ".msgpack", ".ckpt.index", ".safetensors", ".bin")))
    raise HFFormatError(f"{folder} has no weights file: expected one of {list(WEIGHT_FILES)}"
                        + (f" (found {others}: not a transformers PyTorch/safetensors "
                           f"checkpoint)" if others else ""))


class HFFolder:
    """A transformers BERT folder read under Google's names.

    `config` is config.json (checked: BERT, absolute positions). For the Google names of
    `google_shapes` (the model's), `google_shapes()` gives the shape of those the folder holds,
    `read(google_name)` one tensor (transposed back where the table says); `unused` lists the
    names in the files that map to none of them. The tied decoder copies
    (`cls.predictions.decoder.weight` equal to the word embeddings, `.decoder.bias` equal to
    `cls.predictions.bias`) count as used once `check_redundant_copies()` has compared them; copies
    that differ are reported as unused, with a warning.
    """

    def __init__(self, folder: str, google_shapes: dict[str, list[int]]):
        self.folder = folder
        self.config = read_hf_config(folder)
        self._readers = _weight_files(folder)
        self._located = {}  # name in a file -> its reader
        for reader in self._readers:
            for name in reader.entries:
                self._located.setdefault(name, reader)
        by_hf = {}
        for name in self._located:
            by_hf.setdefault(_normalise_hf_name(name), name)
        self._source = {}  # google name -> (name in file, transpose)
        for google, (hf, transpose, _) in name_table(google_shapes).items():
            if hf in by_hf:
                self._source[google] = (by_hf[hf], transpose)
        bias = "cls/predictions/output_bias"
        decoder_bias = by_hf.get("cls.predictions.decoder.bias")
        if bias in google_shapes and bias not in self._source and decoder_bias is not None:
            self._source[bias] = (decoder_bias, False)
        # redundant copies: (name in file, the Google variable it must equal)
        self._copies = [(n, g) for n, g in ((by_hf.get("cls.predictions.decoder.weight"),
                                             "bert/embeddings/word_embeddings"),
                                            (decoder_bias, bias))
                        if n is not None and self._source.get(g, (None,))[0] != n]
        used = {name for name, _ in self._source.values()} | {n for n, _ in self._copies}
        self.unused = sorted(n for n in self._located if n not in used)

    def check_redundant_copies(self) -> None:
        """Compares the decoder copies with what they duplicate; a copy that differs (an untied
        model) is added to `unused` with a warning, since this model ties them."""
        for name, google in self._copies:
            if google in self._source and np.array_equal(self._read_file(name), self.read(google)):
                continue
            log.warning("%s: %s differs from %s; this model ties them, so %s is not used",
                        self.folder, name, google, name)
            self.unused = sorted(self.unused + [name])
        self._copies = []

    def _read_file(self, name: str, rows=None) -> np.ndarray:
        return self._located[name].read(name, rows)

    def google_shapes(self) -> dict[str, list[int]]:
        out = {}
        for google, (name, transpose) in self._source.items():
            shape = self._located[name].shape(name)
            out[google] = list(reversed(shape)) if transpose else list(shape)
        return out

    def where(self, google: str) -> str:
        """'<file> (<name in file>)' of a Google variable, for error messages."""
        name = self._source[google][0]
        return f"{self._located[name].path} ({name})"

    def read(self, google: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        """One variable in Google's layout; `rows=(start, stop)`: only those rows of it, for
        variables stored untransposed (`by_rows`), read from the file alone."""
        name, transpose = self._source[google]
        if rows is not None and transpose:
            raise ValueError(f"{google} is stored transposed: it is read whole")
        value = self._read_file(name, rows)
        return np.ascontiguousarray(value.T) if transpose else value

    def by_rows(self, google: str) -> bool:
        """Whether `read(google, rows=...)` works (the variable is stored untransposed)."""
        return not self._source[google][1]
