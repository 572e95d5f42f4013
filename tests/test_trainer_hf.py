"""transformers folders: `wwm-train export --format=hf` and `--init_checkpoint` from a folder.

The references are transformers 5 itself (BertForPreTraining & co., AutoTokenizer, its own
save_pretrained files), the safetensors library, and Google's bert/tokenization.py.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from wwm_trainer import BertConfig, BertPretrainingModel, Trainer, google_variable_shapes  # noqa: E402
from wwm_trainer import hf  # noqa: E402
from wwm_trainer.checkpoint import init_from_checkpoint, numpy_values, write_checkpoint  # noqa: E402
from wwm_trainer.cli import main as cli_main  # noqa: E402

from reference import google_ids, google_tokenizer  # noqa: E402
from trainer_helpers import (BASE_CONFIG, SHARED_DATA, TINY, VOCAB, google_names,  # noqa: E402
                             tiny_options, write_config, write_real_records,
                             write_synthetic_records)

SEQ, PRED = 64, 10
# vocab: the real Chinese one; initializer_range 0.5 makes the MLM logits of order 10 (about
# +-10 after training, NSP about +-3), so that an absolute tolerance of 1e-4 means something.
# (At 1.0 the network is so badly conditioned that float32 rounding alone reaches 1e-4.)
REAL = dict(TINY, vocab_size=21128, hidden_size=32, intermediate_size=64, num_attention_heads=4,
            max_position_embeddings=SEQ, initializer_range=0.5)


def _need_data():
    if not VOCAB.exists():
        pytest.skip(f"shared data folder not found at {SHARED_DATA} (expected ../shared/data "
                    f"beside the checkout)")


@contextlib.contextmanager
def transformers_log():
    """Records what transformers logs (its logger does not propagate to the root)."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.WARNING)
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _export(checkpoint, config_file, export_dir, *extra, vocab=VOCAB):
    argv = ["export", f"--checkpoint={checkpoint}", f"--bert_config_file={config_file}",
            f"--vocab_file={vocab}", f"--export_dir={export_dir}", *extra]
    assert cli_main(argv) == 0
    return str(export_dir)


# ============================================================================ a trained model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny BERT trained 30 LAMB steps on records from wwm_fast.create_instances (People's
    Daily, whole word masking), its HF and Google exports, and eval records."""
    _need_data()
    d = tmp_path_factory.mktemp("hf_trained")
    records = write_real_records(d, n_lines=1500, seq_len=SEQ, max_pred=PRED)
    config = write_config(d / "bert_config.json", **REAL)
    out = d / "out"
    opts = tiny_options(bert_config_file=config, input_file=records, output_dir=out,
                        max_seq_length=SEQ, max_predictions_per_seq=PRED, train_batch_size=16,
                        learning_rate=1e-2, num_train_steps=30, num_warmup_steps=5,
                        save_checkpoints_steps=30, iterations_per_loop=10)
    trainer = Trainer(opts)
    result = trainer.train()
    assert result.global_step == 30 and np.all(np.isfinite(result.losses))
    hf_dir = _export(out, config, d / "hf", "--format=hf")
    google_dir = _export(out, config, d / "google")
    return {"dir": d, "records": records, "config": config, "out": str(out), "hf": hf_dir,
            "google": google_dir, "values": numpy_values(str(out / "model.ckpt-30"))}


def _eval_batch(records, n=24):
    """The first n records, as run_pretraining.py parses them."""
    from google_oracle import tf_read

    feats = tf_read(records, SEQ, PRED)
    return {k: v[:n] for k, v in feats.items()}


def _our_logits(config: dict, values: dict, feats: dict):
    model = BertPretrainingModel(BertConfig(**config))
    for name, var in model.variables_by_name.items():
        var.assign(values[name])
    out = model(tf.constant(feats["input_ids"], tf.int32), tf.constant(feats["input_mask"], tf.int32),
                tf.constant(feats["segment_ids"], tf.int32),
                tf.constant(feats["masked_lm_positions"], tf.int32))
    return out.mlm_logits.numpy(), out.nsp_logits.numpy()


def _hf_logits(folder: str, feats: dict):
    model = transformers.BertForPreTraining.from_pretrained(folder).eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor(feats["input_ids"]),
                    attention_mask=torch.tensor(feats["input_mask"]),
                    token_type_ids=torch.tensor(feats["segment_ids"]))
    pos = feats["masked_lm_positions"]
    mlm = out.prediction_logits.numpy()[np.arange(len(pos))[:, None], pos]
    return mlm.reshape(-1, mlm.shape[-1]), out.seq_relationship_logits.numpy()


def test_transformers_logits_equal_ours_on_real_records(trained):
    feats = _eval_batch(trained["records"])
    # real records: padding, both segments, NSP labels of both kinds
    assert (feats["input_mask"] == 0).any() and (feats["segment_ids"] == 1).any()
    assert set(feats["next_sentence_labels"].ravel()) == {0, 1}
    with transformers_log() as logged:
        hf_mlm, hf_nsp = _hf_logits(trained["hf"], feats)
    assert not logged, [r.getMessage() for r in logged]
    mlm, nsp = _our_logits(REAL, trained["values"], feats)
    assert np.abs(mlm).max() > 5 and np.abs(nsp).max() > 1  # not tiny logits
    np.testing.assert_allclose(hf_mlm, mlm, rtol=0, atol=1e-4)
    np.testing.assert_allclose(hf_nsp, nsp, rtol=0, atol=1e-4)
    # and the model has learned something transformers reproduces: argmax on masked tokens
    weights = feats["masked_lm_weights"].ravel() > 0
    assert (hf_mlm.argmax(-1) == mlm.argmax(-1))[weights].all()


def test_gelu_tanh_is_gelu_new_in_transformers(trained, tmp_path):
    """bert_config hidden_act gelu_tanh (tanh approximation) -> config.json gelu_new: same logits."""
    cfg = dict(REAL, hidden_act="gelu_tanh")
    config = write_config(tmp_path / "bert_config.json", **cfg)
    _export(trained["out"], config, tmp_path / "hf", "--format=hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["hidden_act"] == "gelu_new"
    feats = _eval_batch(trained["records"], 8)
    hf_mlm, hf_nsp = _hf_logits(str(tmp_path / "hf"), feats)
    mlm, nsp = _our_logits(cfg, trained["values"], feats)
    np.testing.assert_allclose(hf_mlm, mlm, rtol=0, atol=1e-4)
    np.testing.assert_allclose(hf_nsp, nsp, rtol=0, atol=1e-4)
    gelu_mlm, _ = _our_logits(REAL, trained["values"], feats)
    assert np.abs(gelu_mlm - mlm).max() > 1e-3  # the two activations really differ here


def test_folder_contents_and_config(trained):
    folder = trained["hf"]
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors", "special_tokens_map.json",
                                          "tokenizer_config.json", "vocab.txt"]
    cfg = json.loads(Path(folder, "config.json").read_text())
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size",
                "initializer_range", "hidden_dropout_prob", "attention_probs_dropout_prob"):
        assert cfg[key] == REAL[key], key
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertForPreTraining"]
    assert cfg["hidden_act"] == "gelu" and cfg["layer_norm_eps"] == 1e-12 and cfg["pad_token_id"] == 0
    loaded = transformers.AutoConfig.from_pretrained(folder)
    assert type(loaded).__name__ == "BertConfig" and loaded.tie_word_embeddings
    assert Path(folder, "vocab.txt").read_bytes() == VOCAB.read_bytes()
    # the file: float32, the names of transformers' own save (no tied decoder copy), our values
    ours = safetensors_numpy.load_file(os.path.join(folder, "model.safetensors"))
    table = hf.name_table(google_names(REAL))
    assert set(ours) == {hf_name for hf_name, _, _ in table.values()}
    for google, (hf_name, transpose, _) in table.items():
        value = trained["values"][google]
        assert ours[hf_name].dtype == np.float32
        np.testing.assert_array_equal(ours[hf_name], value.T if transpose else value)


@pytest.mark.parametrize("architecture", ["BertForPreTraining", "BertForMaskedLM", "BertModel"])
def test_transformers_classes_load_without_missing_weights(trained, tmp_path, architecture):
    """The default folder loads into BertForPreTraining with no report at all, and into
    BertForMaskedLM / BertModel / AutoModel with nothing missing: only the heads they lack are
    unexpected, which transformers reports for its own BertForPreTraining save as well. A folder
    written with --hf_architecture=X loads into X with no report at all."""
    lacks = {"BertForPreTraining": set(),
             "BertForMaskedLM": {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                 "cls.seq_relationship.weight", "cls.seq_relationship.bias"},
             "BertModel": {n for n, _, _ in hf.name_table(google_names(REAL)).values()
                           if n.startswith("cls.")}}
    cls = getattr(transformers, architecture)
    _, info = cls.from_pretrained(trained["hf"], output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"] and not info["error_msgs"]
    assert info["unexpected_keys"] == lacks[architecture]
    folder = _export(trained["out"], trained["config"], tmp_path / architecture, "--format=hf",
                     f"--hf_architecture={architecture}")
    auto_cls = {"BertForPreTraining": transformers.AutoModelForPreTraining,
                "BertForMaskedLM": transformers.AutoModelForMaskedLM,
                "BertModel": transformers.AutoModel}[architecture]
    with transformers_log() as logged:
        model, info = cls.from_pretrained(folder, output_loading_info=True)
        auto = auto_cls.from_pretrained(folder)
    assert not any(info.values()) and not logged, (info, [r.getMessage() for r in logged])
    assert type(auto) is cls
    emb = model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(emb, trained["values"]["bert/embeddings/word_embeddings"])
    if architecture != "BertModel":  # the decoder is tied to the word embeddings
        tied = model.get_output_embeddings().weight
        assert tied.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_fill_mask_pipeline_runs_on_the_export(trained):
    """The README's example: the folder works in a transformers pipeline as it is."""
    fill = transformers.pipeline("fill-mask", model=trained["hf"])
    out = fill("中国的首都是北[MASK]。")
    assert len(out) == 5 and all(o["token_str"] and 0 <= o["score"] <= 1 for o in out)
    tok = transformers.AutoTokenizer.from_pretrained(trained["hf"])
    assert out[0]["token"] == tok.convert_tokens_to_ids(out[0]["token_str"])


# ============================================================================ round trips
def test_round_trips_are_bit_exact(trained, tmp_path):
    """export -> init -> export gives the same tensors bit for bit (and the same file); Google
    layout -> HF -> Google layout too."""
    cfg = BertConfig(**REAL)
    model = BertPretrainingModel(cfg, seed=7)
    report = init_from_checkpoint(trained["hf"], model.variables_by_name, cfg)
    assert not report.missing and not report.unused and len(report.loaded) == len(google_names(REAL))
    for name, var in model.variables_by_name.items():
        np.testing.assert_array_equal(var.numpy(), trained["values"][name], err_msg=name)
    prefix = write_checkpoint(str(tmp_path / "again" / "model.ckpt-1"), model.variables_by_name)
    again = _export(prefix, trained["config"], tmp_path / "hf_again", "--format=hf")
    a, b = (Path(f, "model.safetensors").read_bytes() for f in (trained["hf"], again))
    assert a == b
    # Google -> HF -> Google: the release read back from the transformers folder
    back = _export(trained["hf"], trained["config"], tmp_path / "google_back")
    original, round_trip = numpy_values(trained["google"]), numpy_values(back)
    assert original.keys() == round_trip.keys() == google_names(REAL).keys()
    for name in original:
        assert original[name].tobytes() == round_trip[name].tobytes(), name


def test_import_in_blocks_of_rows_is_exact(trained, monkeypatch):
    """Large untransposed tensors (the word embeddings) are read and assigned in blocks of rows;
    with tiny blocks every such variable goes that way, and the result is still bit for bit."""
    from wwm_trainer import checkpoint

    monkeypatch.setattr(checkpoint, "_ASSIGN_BLOCK_BYTES", 1000)
    cfg = BertConfig(**REAL)
    model = BertPretrainingModel(cfg, seed=7)
    init_from_checkpoint(trained["hf"], model.variables_by_name, cfg)
    for name, var in model.variables_by_name.items():
        np.testing.assert_array_equal(var.numpy(), trained["values"][name], err_msg=name)


def test_import_of_transformers_own_files(tmp_path):
    """Folders transformers writes itself: save_pretrained (safetensors, and sharded with an
    index), and a pytorch_model.bin state dict in torch's legacy format with the tied decoder
    copies and the old LayerNorm.gamma/beta names."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=64, type_vocab_size=2)
    model = transformers.BertForPreTraining(cfg)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path / "plain")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
    assert len(list((tmp_path / "sharded").glob("model-*.safetensors"))) >= 2
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_text((tmp_path / "plain" / "config.json").read_text())
    old_names = {k.replace("LayerNorm.weight", "LayerNorm.gamma")
                  .replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in model.state_dict().items()}
    assert "cls.predictions.decoder.weight" in old_names
    # the pre-1.6 (non-zip) format of 2019's releases: cannot be memory-mapped
    torch.save(old_names, legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)

    ours = BertConfig(**TINY)
    expected = {}
    for google, (hf_name, transpose, _) in hf.name_table(google_variable_shapes(ours)).items():
        expected[google] = state[hf_name].T if transpose else state[hf_name]
    for folder in ("plain", "sharded", "legacy"):
        m = BertPretrainingModel(ours, seed=3)
        report = init_from_checkpoint(str(tmp_path / folder), m.variables_by_name, ours)
        assert not report.missing, folder
        assert report.unused == [], (folder, report.unused)
        for name, var in m.variables_by_name.items():
            np.testing.assert_array_equal(var.numpy(), expected[name], err_msg=f"{folder} {name}")


def test_bertmodel_folder_initialises_heads_fresh_and_says_so(tmp_path, caplog):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=64, type_vocab_size=2)
    transformers.BertModel(cfg).save_pretrained(tmp_path / "encoder_only")
    ours = BertConfig(**TINY)
    fresh = BertPretrainingModel(ours, seed=3)
    m = BertPretrainingModel(ours, seed=3)
    with caplog.at_level(logging.INFO, logger="wwm_trainer"):
        report = init_from_checkpoint(str(tmp_path / "encoder_only"), m.variables_by_name, ours)
    heads = [n for n in google_names(TINY) if n.startswith("cls/")]
    assert sorted(report.missing) == sorted(heads) and not report.unused
    assert "BertModel weights only (no cls.* heads)" in caplog.text
    for name in heads:  # exactly the fresh initialisation of the seed
        np.testing.assert_array_equal(m.variables_by_name[name].numpy(),
                                      fresh.variables_by_name[name].numpy())
    assert not np.array_equal(m.variables_by_name["bert/pooler/dense/kernel"].numpy(),
                              fresh.variables_by_name["bert/pooler/dense/kernel"].numpy())


def test_untied_decoder_is_reported(tmp_path, caplog):
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=64, type_vocab_size=2)
    state = {k: v.clone() for k, v in transformers.BertForPreTraining(cfg).state_dict().items()}
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1.0
    (tmp_path / "config.json").write_text(cfg.to_json_string())
    torch.save(state, tmp_path / "pytorch_model.bin")
    ours = BertConfig(**dict(TINY, num_hidden_layers=1))
    with caplog.at_level(logging.WARNING, logger="wwm_trainer"):
        report = init_from_checkpoint(str(tmp_path), BertPretrainingModel(ours).variables_by_name, ours)
    assert report.unused == ["cls.predictions.decoder.weight"]
    assert "differs from bert/embeddings/word_embeddings" in caplog.text


def test_base_size_layout_matches_transformers():
    """BERT-base (12 layers, the Chinese vocab): our table gives exactly the names and shapes of
    transformers' BertForPreTraining state dict, less the tied decoder copies; built on the meta
    device, so no weights are allocated."""
    cfg = BertConfig.from_dict(BASE_CONFIG)
    conf = transformers.BertConfig.from_dict(hf.hf_config_dict(cfg))
    with torch.device("meta"):
        model = transformers.BertForPreTraining(conf)
    theirs = {k: list(v.shape) for k, v in model.state_dict().items()}
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    table = hf.name_table(google_names(BASE_CONFIG))
    assert len(table) == 206
    assert {hf_name: shape for hf_name, _, shape in table.values()} == \
        {k: v for k, v in theirs.items() if k not in tied}
    transposed = sorted(g for g, (_, t, _) in table.items() if t)
    assert len(transposed) == 12 * 6 + 2 and all(g.endswith("/kernel") for g in transposed)
    assert table["cls/seq_relationship/output_weights"] == ("cls.seq_relationship.weight", False, [2, 768])
    assert conf.hidden_act == "gelu" and conf.layer_norm_eps == 1e-12 and conf.pad_token_id == 0
    assert conf.directionality == "bidi"  # bert_config.json's other keys are kept


# ============================================================================ eval parity
def test_eval_from_hf_folder_equals_eval_from_google_checkpoint(trained, tmp_path):
    results = {}
    for kind in ("google", "hf"):
        out = tmp_path / kind
        rc = cli_main([f"--bert_config_file={trained['config']}", f"--input_file={trained['records']}",
                       f"--output_dir={out}", f"--init_checkpoint={trained[kind]}", "--do_eval",
                       f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}",
                       "--eval_batch_size=16", "--max_eval_steps=4", "--strategy=one_device"])
        assert rc == 0
        results[kind] = (out / "eval_results.txt").read_text()
    assert results["hf"] == results["google"]
    assert "masked_lm_accuracy = " in results["hf"] and "next_sentence_loss = " in results["hf"]


# ============================================================================ tokenizer
# Known differences of transformers' BertTokenizer (tokenizers' Rust BertNormalizer, WordPiece and
# added special tokens) from Google's bert/tokenization.py (bert-tensorflow 1.0.4, Python's
# unicodedata), numbered as in trainer/README.md's table. Each: text, HF's tokens, Google's.
KNOWN_DIFFERENCES = [
    # 1: private-use characters (Co): Google keeps them (-> [UNK], or the word they are in
    #    becomes [UNK]); HF deletes them like control characters
    ("不能\ue139期", ["不", "能", "期"], ["不", "能", "[UNK]", "期"]),
    # 2: a word of 101-200 characters: HF's limit is 100 characters, Google's 200
    ("a" * 101, ["[UNK]"], ["aaa"] + ["##aa"] * 49),
    # 3: special-token strings in the text are one token for HF; Google splits them as text
    ("x[MASK]y", ["x", "[MASK]", "y"], ["x", "[", "ma", "##sk", "]", "y"]),
    # 4: U+2B820-U+2B91F (the start of CJK Extension E) are not CJK for HF (its range starts
    #    at U+2B920), so they do not split from the letters around them
    ("a\U0002b820b", ["[UNK]"], ["a", "[UNK]", "b"]),
    # 5: punctuation that Python's unicodedata knows and tokenizers' older tables do not (U+2E43)
    #    splits words in Google's tokenizer only
    ("a\u2e43b", ["[UNK]"], ["a", "[UNK]", "b"]),
]


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    """The tokenizer of an exported folder (a random tiny model with the Chinese vocab)."""
    _need_data()
    d = tmp_path_factory.mktemp("hf_tok")
    cfg = BertConfig(**dict(TINY, vocab_size=21128))
    prefix = write_checkpoint(str(d / "ckpt" / "model.ckpt-0"), BertPretrainingModel(cfg).variables_by_name)
    config = write_config(d / "bert_config.json", vocab_size=21128)
    folder = _export(prefix, config, d / "hf", "--format=hf")
    return transformers.AutoTokenizer.from_pretrained(folder)


def _tokens(tok, text):
    return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])


def test_auto_tokenizer_is_lower_casing_bert_with_chinese_split(hf_tokenizer):
    tok = hf_tokenizer
    assert type(tok).__name__ == "BertTokenizer"
    assert tok.do_lower_case and tok.tokenize_chinese_chars
    norm = json.loads(tok.backend_tokenizer.normalizer.__getstate__())
    assert norm["lowercase"] and norm["handle_chinese_chars"] and norm["clean_text"]
    assert _tokens(tok, "BERT模型ÉTÉ") == ["be", "##rt", "模", "型", "et", "##e"]
    enc = tok("中国", "北京")
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "中", "国", "[SEP]", "北", "京",
                                                            "[SEP]"]
    assert enc["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert (tok.pad_token_id, tok.mask_token_id, tok.cls_token_id) == (0, 103, 101)
    assert tok.model_max_length == TINY["max_position_embeddings"]


@pytest.mark.parametrize("case", range(len(KNOWN_DIFFERENCES)))
def test_known_tokenizer_differences(hf_tokenizer, case):
    text, hf_tokens, google_tokens = KNOWN_DIFFERENCES[case]
    google = google_tokenizer(str(VOCAB), True)
    assert _tokens(hf_tokenizer, text) == hf_tokens
    assert google.tokenize(text) == google_tokens


def test_tokenizer_gives_google_ids_on_every_line_of_shared_data(hf_tokenizer):
    """People's Daily and the reviews, every line: HF's ids equal Google's, except on lines with
    private-use characters (difference 1), which agree once those characters are removed.

    Google's ids of all 122,790 lines come from wwm_fast.FullTokenizer, which equals Google's
    tokenizer on every line of these files (test_tokenization.py checks it; Google's Python
    takes a minute here); Google's own code is run on 10,000 of the lines and on every line
    that differs."""
    import wwm_fast

    google = google_tokenizer(str(VOCAB), True)
    lines = []
    for name in ("people_daily_199801.txt.gz", "reviews.txt.gz"):
        with gzip.open(SHARED_DATA / name, "rb") as f:
            lines += [line for line in f.read().decode("utf-8").split("\n") if line]
    assert len(lines) > 120_000
    ids = hf_tokenizer(lines, add_special_tokens=False)["input_ids"]
    enc = wwm_fast.FullTokenizer(str(VOCAB), do_lower_case=True).encode_batch(lines)
    ref, splits = enc.ids.tolist(), enc.row_splits.tolist()
    differ = [i for i in range(len(lines)) if ids[i] != ref[splits[i]:splits[i + 1]]]
    for i in range(0, len(lines), len(lines) // 10_000):
        assert google_ids(google, lines[i]) == ref[splits[i]:splits[i + 1]]

    def private_use(c):
        return 0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000

    assert 0 < len(differ) < 20
    for i in differ:
        line = lines[i]
        assert google_ids(google, line) != ids[i]
        assert any(private_use(c) for c in line), line
        cleaned = "".join(c for c in line if not private_use(c))
        assert hf_tokenizer(cleaned, add_special_tokens=False)["input_ids"] == ids[i]
        assert google_ids(google, cleaned) == ids[i], line


# ============================================================================ bad input
def _tiny_hf_folder(path, **config_overrides):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=64, type_vocab_size=2)
    transformers.BertForPreTraining(cfg).save_pretrained(path)
    if config_overrides:
        obj = json.loads((path / "config.json").read_text())
        obj.update(config_overrides)
        (path / "config.json").write_text(json.dumps(obj))
    return str(path)


def _init(folder, config=None):
    cfg = BertConfig(**(config or TINY))
    return init_from_checkpoint(str(folder), BertPretrainingModel(cfg).variables_by_name, cfg)


def test_not_bert_folders_are_refused(tmp_path):
    roberta = tmp_path / "roberta"
    _tiny_hf_folder(roberta, model_type="roberta", architectures=["RobertaForMaskedLM"])
    (roberta / "vocab.json").write_text(json.dumps({"<s>": 0, "</s>": 2, "Ġthe": 5}))
    (roberta / "merges.txt").write_text("#version: 0.2\nĠ t\nĠt he\n")
    with pytest.raises(ValueError, match=r"roberta/config.json: model_type is 'roberta', not 'bert'"):
        _init(roberta)
    albert = _tiny_hf_folder(tmp_path / "albert", model_type="albert")
    with pytest.raises(ValueError, match=r"albert/config.json: model_type is 'albert', not 'bert'"):
        _init(albert)


@pytest.mark.parametrize("key,value", [("vocab_size", 120), ("hidden_size", 32),
                                       ("num_attention_heads", 4)])
def test_config_disagreeing_with_bert_config_file(tmp_path, key, value):
    folder = _tiny_hf_folder(tmp_path / "f", **{key: value})
    with pytest.raises(ValueError, match=rf"f/config.json: {key} is {value}, but --bert_config_file "
                                         rf"has {TINY[key]}"):
        _init(folder)
    # without the config (shapes only) the sizes are still checked
    if key != "num_attention_heads":
        with pytest.raises(ValueError, match=rf"config.json: {key} is {value}, but the model"):
            init_from_checkpoint(folder, BertPretrainingModel(BertConfig(**TINY)).variables_by_name)


def test_wwm_train_checks_the_head_count_of_a_folder(tmp_path, capsys):
    """The head count is invisible in the weights' shapes: wwm-train passes its bert_config to
    the import so that a folder made for another number of heads is refused."""
    folder = _tiny_hf_folder(tmp_path / "f", num_attention_heads=4)
    config = write_config(tmp_path / "bert_config.json")
    records = tmp_path / "r.tfrecord"
    write_synthetic_records(records, 8, seq_len=16, max_pred=3, vocab_size=TINY["vocab_size"])
    rc = cli_main([f"--bert_config_file={config}", f"--input_file={records}",
                   f"--output_dir={tmp_path / 'out'}", f"--init_checkpoint={folder}", "--do_train",
                   "--max_seq_length=16", "--max_predictions_per_seq=3", "--train_batch_size=8",
                   "--num_train_steps=1", "--num_warmup_steps=0", "--strategy=one_device"])
    assert rc != 0
    assert "num_attention_heads is 4, but --bert_config_file has 2" in capsys.readouterr().err


def test_folder_without_weights_or_config(tmp_path):
    folder = _tiny_hf_folder(tmp_path / "noweights")
    os.remove(os.path.join(folder, "model.safetensors"))
    with pytest.raises(ValueError, match=r"noweights has no weights file: expected one of "
                                         r"\['model.safetensors'"):
        _init(folder)
    (tmp_path / "noweights" / "tf_model.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ValueError, match=r"found \['tf_model.h5'\]"):
        _init(folder)
    noconfig = _tiny_hf_folder(tmp_path / "noconfig")
    os.remove(os.path.join(noconfig, "config.json"))
    with pytest.raises(ValueError, match="noconfig has weights but no config.json"):
        _init(noconfig)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "header_length", "short"])
def test_corrupt_safetensors(tmp_path, damage):
    folder = _tiny_hf_folder(tmp_path / "f")
    path = tmp_path / "f" / "model.safetensors"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:-100])
        match = r"model.safetensors is truncated: tensor '.*' ends at byte"
    elif damage == "garbage":
        path.write_bytes(data[:8] + b"\xff" * (len(data) - 8))
        match = r"model.safetensors is not a valid safetensors file: its header is not JSON"
    elif damage == "header_length":
        path.write_bytes((10 ** 12).to_bytes(8, "little") + data[8:])
        match = r"model.safetensors is not a valid safetensors file: header length 1000000000000"
    else:
        path.write_bytes(b"\x01\x02")
        match = r"model.safetensors is not a safetensors file: 2 bytes"
    with pytest.raises(ValueError, match=match):
        _init(folder)


def test_pytorch_bin_without_torch_names_the_extra(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text(transformers.BertConfig(vocab_size=97).to_json_string())
    torch.save({"bert.embeddings.word_embeddings.weight": torch.zeros(97, 16)}, folder / "pytorch_model.bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ValueError, match=r"pytorch_model.bin needs PyTorch, which is not installed: "
                                         r"pip install 'wwm-fast\[hf\]'"):
        _init(folder)


def test_shape_mismatch_names_file_and_shapes(tmp_path):
    folder = _tiny_hf_folder(tmp_path / "f", intermediate_size=64)  # config.json says 64, weights 32
    model = BertPretrainingModel(BertConfig(**dict(TINY, intermediate_size=64)))
    with pytest.raises(ValueError, match=r"'bert/encoder/layer_0/intermediate/dense/kernel': .*"
                                         r"model.safetensors \(bert.encoder.layer.0.intermediate."
                                         r"dense.weight\) has \[16, 32\].*expects \[16, 64\]"):
        init_from_checkpoint(folder, model.variables_by_name)


def test_export_is_atomic(trained, tmp_path):
    """Nothing half-written under the final name: a failure mid-way leaves no folder (and no
    temporary one); an existing non-empty folder is refused and left alone."""
    cfg = BertConfig(**REAL)
    values = trained["values"]
    calls = []

    def failing(name):
        calls.append(name)
        if len(calls) == 10:
            raise OSError("disk full (simulated)")
        return values[name]

    target = tmp_path / "release"
    with pytest.raises(OSError, match="disk full"):
        hf.write_folder(str(target), cfg, google_variable_shapes(cfg), failing, str(VOCAB))
    assert len(calls) == 10 and os.listdir(tmp_path) == []
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    rc = cli_main(["export", f"--checkpoint={trained['out']}", f"--bert_config_file={trained['config']}",
                   f"--vocab_file={VOCAB}", f"--export_dir={target}", "--format=hf"])
    assert rc == 2 and os.listdir(target) == ["keep.txt"]
    # an empty folder is fine (created by the user beforehand)
    os.remove(target / "keep.txt")
    _export(trained["out"], trained["config"], target, "--format=hf")
    assert sorted(os.listdir(target))[0] == "config.json"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_export_errors(trained, tmp_path, capsys):
    base = ["export", f"--checkpoint={trained['out']}", f"--bert_config_file={trained['config']}"]
    assert cli_main(base + [f"--export_dir={tmp_path / 'a'}", "--format=hf"]) == 2
    assert "--format=hf needs --vocab_file" in capsys.readouterr().err
    assert cli_main(base + [f"--vocab_file={VOCAB}", "--export_dir=gs://bucket/x", "--format=hf"]) == 2
    assert "local folder only" in capsys.readouterr().err
    small = tmp_path / "vocab.txt"
    small.write_text("[PAD]\n[UNK]\n")
    assert cli_main(base + [f"--vocab_file={small}", f"--export_dir={tmp_path / 'b'}", "--format=hf"]) == 2
    assert "has 2 entries, bert config vocab_size is 21128" in capsys.readouterr().err
    no_mask = tmp_path / "vocab_no_mask.txt"
    no_mask.write_bytes(VOCAB.read_bytes().replace(b"[MASK]\n", b"[MASK2]\n"))
    assert cli_main(base + [f"--vocab_file={no_mask}", f"--export_dir={tmp_path / 'c'}", "--format=hf"]) == 2
    assert "lacks the special token(s) ['[MASK]']" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in "abc")


def test_google_export_of_gelu_tanh_warns(trained, tmp_path, caplog):
    config = write_config(tmp_path / "bert_config.json", **dict(REAL, hidden_act="gelu_tanh"))
    with caplog.at_level(logging.WARNING, logger="wwm_trainer"):
        _export(trained["out"], config, tmp_path / "google")
    assert "hidden_act is 'gelu_tanh'" in caplog.text
    assert "accepts only linear/relu/gelu/tanh" in caplog.text and "'gelu_new'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wwm_trainer"):
        _export(trained["out"], trained["config"], tmp_path / "google_gelu")
    assert "hidden_act" not in caplog.text


# ============================================================================ safetensors I/O
def test_safetensors_writer_and_reader_agree_with_the_library(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"b": rng.standard_normal((3, 5)).astype(np.float32), "a": np.zeros((0, 4), np.float32),
              "c": rng.standard_normal(7).astype(np.float32)}
    ours = tmp_path / "ours.safetensors"
    hf.write_safetensors(str(ours), [(n, list(v.shape)) for n, v in arrays.items()], arrays.__getitem__,
                         metadata={"format": "pt"})
    loaded = safetensors_numpy.load_file(str(ours))
    assert loaded.keys() == arrays.keys()
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
    # reading the library's files: float32, float16, float64, bfloat16 (written by torch)
    from safetensors.torch import save_file as torch_save_file

    theirs = tmp_path / "theirs.safetensors"
    x = torch.tensor(rng.standard_normal((4, 6)), dtype=torch.float32)
    torch_save_file({"f32": x, "f16": x.half(), "f64": x.double(), "bf16": x.bfloat16(),
                     "ids": torch.arange(3)}, str(theirs))
    reader = hf.SafetensorsFile(str(theirs))
    np.testing.assert_array_equal(reader.read("f32"), x.numpy())
    np.testing.assert_array_equal(reader.read("f16"), x.half().float().numpy())
    np.testing.assert_array_equal(reader.read("f64"), x.double().float().numpy())
    np.testing.assert_array_equal(reader.read("bf16"), x.bfloat16().float().numpy())
    for name, value in (("f32", x), ("f16", x.half()), ("bf16", x.bfloat16()), ("f64", x.double())):
        np.testing.assert_array_equal(reader.read(name, (1, 3)), value[1:3].float().numpy())
    with pytest.raises(ValueError, match=r"tensor 'ids' has dtype I64, expected a floating type"):
        reader.read("ids")
