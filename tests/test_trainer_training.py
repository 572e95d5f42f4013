"""Training end to end: the loss falls on real TFRecords; bad inputs fail clearly; the CLI."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from wwm_trainer import NonFiniteLossError, TrainOptions, Trainer  # noqa: E402
from wwm_trainer.checkpoint import numpy_values  # noqa: E402
from wwm_trainer.cli import main as cli_main  # noqa: E402

from conftest import require_shared_data  # noqa: E402
from trainer_helpers import (SHARED_DATA, TINY, VOCAB, tiny_options, write_config,  # noqa: E402
                             write_synthetic_records)

REAL_SEQ, REAL_PRED = 64, 10


@pytest.fixture(scope="module")
def real_records(tmp_path_factory):
    """TFRecords made by `wwm_fast.create_instances` (whole word masking from WordPiece groups)
    from the first 2000 lines of People's Daily with the real Chinese vocab."""
    require_shared_data()
    d = tmp_path_factory.mktemp("real")
    with gzip.open(SHARED_DATA / "people_daily_199801.txt.gz", "rb") as f:
        lines = f.read().split(b"\n")[:2000]
    text = d / "pd.txt"
    text.write_bytes(b"\n".join(lines) + b"\n")
    out = d / "pd.tfrecord"
    import wwm_fast

    # no segmenter on purpose: whole word masking groups ## pieces only, and says so
    with pytest.warns(wwm_fast.OutputWarning, match="## pieces only"):
        wwm_fast.create_instances([str(text)], str(VOCAB), [str(out)], max_seq_length=REAL_SEQ,
                                  max_predictions_per_seq=REAL_PRED, dupe_factor=1,
                                  random_seed=12345, do_whole_word_mask=True, progress=False)
    return str(out)


def test_tiny_model_mlm_loss_falls_on_real_records(real_records, tmp_path):
    cfg = write_config(tmp_path / "bert_config.json", vocab_size=21128, hidden_size=32,
                       intermediate_size=64, max_position_embeddings=REAL_SEQ)
    opts = TrainOptions(bert_config_file=cfg, input_file=real_records, output_dir=str(tmp_path / "out"),
                        do_train=True, do_eval=True, max_seq_length=REAL_SEQ,
                        max_predictions_per_seq=REAL_PRED, train_batch_size=16, eval_batch_size=16,
                        learning_rate=3e-2, num_train_steps=100, num_warmup_steps=20,
                        save_checkpoints_steps=100, iterations_per_loop=25, max_eval_steps=5,
                        strategy="one_device")
    trainer = Trainer(opts)
    result = trainer.train()
    losses = np.array(result.losses)
    assert len(losses) == 100 and np.all(np.isfinite(losses))
    # ln(21128) = 9.96 at the start; the unigram level of Chinese characters is ~7
    assert losses[:5].mean() > 10.0
    assert losses[-25:].mean() < losses[:5].mean() - 2.0, losses[::10]
    assert result.metrics["masked_lm_loss"] < 8.0
    ev = trainer.evaluate()
    assert ev["global_step"] == 100
    assert ev["masked_lm_loss"] < 8.0 and ev["masked_lm_accuracy"] > 0.02
    text = (tmp_path / "out" / "eval_results.txt").read_text()
    assert text.startswith("***** Eval results *****\n") and "masked_lm_accuracy = " in text
    assert list((tmp_path / "out").glob("events.out.tfevents.*"))


# ----------------------------------------------------------------------------- bad inputs
SEQ, PRED = 32, 5


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    return {"dir": d, "config": write_config(d / "bert_config.json"),
            "good": write_synthetic_records(d / "good.tfrecord", 64, seq_len=SEQ, max_pred=PRED,
                                            vocab_size=TINY["vocab_size"])}


def _opts(synth, out, **kw):
    return tiny_options(**{"bert_config_file": synth["config"], "input_file": synth["good"],
                           "output_dir": out, "max_seq_length": SEQ,
                           "max_predictions_per_seq": PRED, **kw})


def test_records_with_other_seq_length(synth, tmp_path):
    path = write_synthetic_records(tmp_path / "s64.tfrecord", 4, seq_len=64, max_pred=PRED,
                                   vocab_size=TINY["vocab_size"])
    with pytest.raises(ValueError, match=r"feature 'input_ids' has length 64, expected 32 \(--max_seq_length=32\)"):
        Trainer(_opts(synth, tmp_path / "out", input_file=path)).train()
    assert not (tmp_path / "out" / "checkpoint").exists()
    # a bad file among many that the up-front check does not sample: caught when it is parsed
    d = tmp_path / "many"
    d.mkdir()
    for i in range(10):
        write_synthetic_records(d / f"part-{i:02d}.tfrecord", 8, seq_len=64 if i == 2 else SEQ,
                                max_pred=PRED, vocab_size=TINY["vocab_size"], seed=i)
    with pytest.raises(ValueError, match=r"feature '(input_ids|input_mask|segment_ids)' with another length than expected \(--max_seq_length=32\)"):
        Trainer(_opts(synth, tmp_path / "out2", input_file=str(d / "part-*"), num_train_steps=20,
                      iterations_per_loop=20, save_checkpoints_steps=20)).train()
    assert not (tmp_path / "out2" / "checkpoint").exists()


def test_records_with_other_prediction_count(synth, tmp_path, capsys):
    path = write_synthetic_records(tmp_path / "p20.tfrecord", 4, seq_len=SEQ, max_pred=PRED,
                                   pred_len=20, vocab_size=TINY["vocab_size"])
    argv = [f"--bert_config_file={synth['config']}", f"--input_file={path}",
            f"--output_dir={tmp_path / 'out'}", "--do_train=True", f"--max_seq_length={SEQ}",
            f"--max_predictions_per_seq={PRED}", "--train_batch_size=8", "--num_train_steps=1",
            "--num_warmup_steps=0", "--strategy=one_device"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "feature 'masked_lm_positions' has length 20, expected 5 (--max_predictions_per_seq=5)" in err


def test_records_without_nsp_labels(synth, tmp_path):
    path = write_synthetic_records(tmp_path / "nonsp.tfrecord", 16, seq_len=SEQ, max_pred=PRED,
                                   vocab_size=TINY["vocab_size"], nsp=False)
    with pytest.raises(ValueError, match="record has no feature 'next_sentence_labels'"):
        Trainer(_opts(synth, tmp_path / "a", input_file=path)).train()
    # RoBERTa-style (no NSP) needs no labels; pooler and NSP head stay untouched
    trainer = Trainer(_opts(synth, tmp_path / "b", input_file=path, use_nsp=False, num_train_steps=1,
                            save_checkpoints_steps=1))
    before = trainer.model.variables_by_name["cls/seq_relationship/output_weights"].numpy()
    result = trainer.train()
    assert result.metrics["next_sentence_loss"] == 0.0
    np.testing.assert_array_equal(
        trainer.model.variables_by_name["cls/seq_relationship/output_weights"].numpy(), before)
    names = dict(tf.train.list_variables(str(tmp_path / "b")))
    assert "cls/seq_relationship/output_weights" in names
    assert "cls/seq_relationship/output_weights/lamb_m" not in names


def test_diverging_run_keeps_last_good_checkpoint(synth, tmp_path):
    """Two good steps are saved; resumed with an absurd learning rate the weights overflow and the
    loss becomes non-finite: training stops with the step, and model.ckpt-2 stays latest, intact."""
    out = tmp_path / "out"
    Trainer(_opts(synth, out, num_train_steps=2)).train()
    saved = numpy_values(str(out))
    with pytest.raises(NonFiniteLossError, match=r"at step [34] "):
        Trainer(_opts(synth, out, num_train_steps=6, learning_rate=1e38)).train()
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-2")
    assert not list(out.glob("model.ckpt-[3456]*"))
    after = numpy_values(str(out))
    for name in saved:
        np.testing.assert_array_equal(after[name], saved[name])
        if after[name].dtype.kind == "f":
            assert np.all(np.isfinite(after[name]))


# ----------------------------------------------------------------------------- CLI
def test_cli_train_and_flag_forms(synth, tmp_path):
    argv = [f"--bert_config_file={synth['config']}", f"--input_file={synth['good']}",
            f"--output_dir={tmp_path / 'out'}", "--do_train=True", "--nodo_eval",
            f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}", "--train_batch_size=8",
            "--num_train_steps=2", "--num_warmup_steps=1", "--save_checkpoints_steps=2",
            "--iterations_per_loop=1", "--optimizer=adamw", "--use_nsp=false", "--strategy=one_device",
            "--gradient_accumulation_steps=2", "--precision=bfloat16"]
    assert cli_main(argv) == 0
    names = dict(tf.train.list_variables(str(tmp_path / "out")))
    assert "bert/embeddings/word_embeddings/adam_v" in names
    # bfloat16 compute: variables, slots and the checkpoint stay float32
    dtypes = tf.train.load_checkpoint(str(tmp_path / "out")).get_variable_to_dtype_map()
    assert {d for n, d in dtypes.items() if n != "global_step"} == {tf.float32}


@pytest.mark.parametrize("extra, match", [
    (["--do_train=false"], "at least one of --do_train or --do_eval"),
    (["--do_train", "--input_file=/nonexistent/*.tfrecord"], "pattern '/nonexistent/\\*.tfrecord' matches no file"),
    (["--do_train", "--train_batch_size=6", "--gradient_accumulation_steps=4"],
     r"--train_batch_size \(6\) must be a multiple of --gradient_accumulation_steps \(4\)"),
    (["--do_train", "--num_warmup_steps=5", "--num_train_steps=2"], r"--num_warmup_steps must be in \[0, --num_train_steps=2\], got 5"),
    (["--do_train", "--max_seq_length=128"], r"--max_seq_length \(128\) exceeds max_position_embeddings \(64\)"),
    (["--do_train", "--use_tpu", "--tpu_name=local"], "a TPU was requested .* none was found for --tpu_name='local'"),
    (["--do_train", "--use_tpu", "--strategy=mirrored"], "--use_tpu conflicts with --strategy=mirrored"),
])
def test_cli_errors_name_the_value(synth, tmp_path, capsys, extra, match):
    argv = [f"--bert_config_file={synth['config']}", f"--input_file={synth['good']}",
            f"--output_dir={tmp_path / 'out'}", f"--max_seq_length={SEQ}",
            f"--max_predictions_per_seq={PRED}", "--train_batch_size=8", "--num_train_steps=2",
            "--num_warmup_steps=0"]
    assert cli_main(argv + extra) == 2
    err = capsys.readouterr().err
    import re
    assert re.search(match, err), err


def test_cli_rejects_unknown_choices(synth, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([f"--bert_config_file={synth['config']}", f"--output_dir={tmp_path}", "--optimizer=sgd"])
    assert e.value.code == 2
    assert "invalid choice: 'sgd'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([f"--bert_config_file={synth['config']}", f"--output_dir={tmp_path}", "--do_train=maybe"])
    assert "expected a boolean (true/false), got 'maybe'" in capsys.readouterr().err
