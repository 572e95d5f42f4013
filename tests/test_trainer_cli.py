"""`wwm-train`'s command line (issue 11): flags parsed and range-checked before TensorFlow is
imported (`--help` without TensorFlow, a bad value in one line with exit status 2), the `train`
extra named when TensorFlow is missing, a read-only --output_dir refused before training,
TensorFlow's start-up lines hidden unless --verbose, exit status 2 for every error as `wwm-fast`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from wwm_trainer import cli

from trainer_helpers import TINY, write_config, write_synthetic_records

SEQ, PRED = 32, 5


def _python(code: str, *, timeout=600, env=None):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


def _wwm_train(*args, timeout=900, env=None):
    r = subprocess.run([sys.executable, "-m", "wwm_trainer.cli", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


def _parsers():
    out = []
    for make in (cli._train_parser, cli._export_parser):
        p = make()
        cli._finish_parser(p)
        out.append(p)
    return out


def test_help_and_bad_flags_need_no_tensorflow():
    """`wwm-train --help` imported TensorFlow first (6-12 s); now neither --help, nor a bad flag,
    nor `import wwm_trainer` loads it."""
    code = """if True:
        import sys
        import wwm_trainer
        from wwm_trainer.cli import main
        for argv in (["--help"], ["export", "--help"],
                     ["--bert_config_file=c", "--output_dir=o", "--max_seq_length=3000000000"]):
            try:
                main(argv)
            except SystemExit as e:
                print("exit", e.code)
        print("tensorflow" in sys.modules)
    """
    rc, out, err = _python(code)
    assert rc == 0, err
    marks = [line for line in out.splitlines() if line.startswith("exit ")
             or line in ("True", "False")]
    assert marks == ["exit 0", "exit 0", "exit 2", "False"], out
    assert "wwm-train: error: argument --max_seq_length: must be an integer in [5, 8192], " \
           "got 3000000000" in err


def test_every_numeric_flag_has_a_range():
    for p in _parsers():
        for action in p._actions:
            if action.type in (int, float):
                assert action.dest in cli._RANGES, f"{p.prog} --{action.dest} has no range"


def _bad_values(lo, hi, lo_open, hi_open):
    if isinstance(lo, float):
        bad = ["nan", "inf", "-inf", hi * 2 + 1, lo - 1]
        bad += [lo] if lo_open else []
        bad += [hi] if hi_open else []
        return bad
    return [hi + 1, lo - 1, 2 ** 64, *(v for v in (2 ** 31, 3_000_000_000) if v > hi)]


def test_numeric_flags_out_of_range_are_one_line_exit_2(capsys):
    checked = 0
    for p in _parsers():
        base = (["export", "--checkpoint=c", "--export_dir=e", "--bert_config_file=c.json"]
                if p.prog.endswith("export") else ["--bert_config_file=c.json", "--output_dir=o"])
        for action in p._actions:
            if action.dest not in cli._RANGES:
                continue
            for value in _bad_values(*cli._RANGES[action.dest]):
                with pytest.raises(SystemExit) as e:
                    cli.main(base + [f"--{action.dest}={value}"])
                assert e.value.code == 2
                err = capsys.readouterr().err.strip().splitlines()
                assert len(err) == 1, err
                assert err[0].startswith(f"{p.prog}: error: argument --{action.dest}: must be ")
                assert f"got {value}" in err[0], err[0]
                checked += 1
    assert checked > 60


def test_help_shows_every_default_once():
    for p in _parsers():
        fmt = cli._Formatter(prog=p.prog)
        for action in p._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS \
                    or isinstance(action, argparse._HelpAction):
                continue
            shown = fmt._expand_help(action)
            where = f"{p.prog} --{action.dest}"
            assert shown.strip(), f"{where}: no help text"
            assert shown.lower().count("default") <= 1, where
            if not action.required and action.default is not None:
                assert "default" in shown.lower(), f"{where}: the default is not shown"
        assert "default: None" not in p.format_help()


def test_without_tensorflow_names_the_train_extra():
    code = """if True:
        import sys
        sys.modules["tensorflow"] = None  # as if TensorFlow were not installed
        from wwm_trainer.cli import main
        sys.exit(main(["--bert_config_file=c.json", "--output_dir=o", "--do_train",
                       "--input_file=x"]))
    """
    rc, _, err = _python(code)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("wwm-train: error: TensorFlow is not installed")
    assert "pip install 'wwm-fast[train]'" in lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("tensorflow")
    d = tmp_path_factory.mktemp("tiny")
    return {"config": write_config(d / "bert_config.json"),
            "records": write_synthetic_records(d / "r.tfrecord", 32, seq_len=SEQ, max_pred=PRED,
                                               vocab_size=TINY["vocab_size"]),
            "dir": d}


def _train_args(run, out):
    return [f"--bert_config_file={run['config']}", f"--input_file={run['records']}",
            f"--output_dir={out}", "--do_train", f"--max_seq_length={SEQ}",
            f"--max_predictions_per_seq={PRED}", "--train_batch_size=8", "--num_train_steps=2",
            "--num_warmup_steps=0", "--iterations_per_loop=2", "--save_checkpoints_steps=2",
            "--strategy=one_device"]


# the trainer's own log lines (logging.basicConfig in wwm_trainer.cli)
_OWN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) wwm_trainer")


def test_tensorflow_start_up_lines_hidden_unless_verbose(tiny_run, tmp_path):
    """Issue 11: absl, oneDNN and cpu_feature_guard lines on every run. By default stderr holds
    the trainer's own log lines only; --verbose shows TensorFlow's (and tracebacks)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    rc, _, err = _wwm_train(*_train_args(tiny_run, tmp_path / "quiet"), env=env)
    assert rc == 0, err[-3000:]
    others = [line for line in err.splitlines() if not _OWN_LINE.match(line)]
    assert others == [], err[-3000:]
    assert (tmp_path / "quiet" / "model.ckpt-2.index").exists()
    # --verbose: TensorFlow's start-up lines are shown, and an error comes with its traceback
    rc, _, err = _wwm_train(f"--bert_config_file={tmp_path / 'missing.json'}",
                            f"--output_dir={tmp_path / 'v'}", "--do_train",
                            f"--input_file={tiny_run['records']}", "--verbose", env=env)
    assert rc == 2
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("wwm-train: error: ")
    assert [line for line in err.splitlines() if "I0000" in line or "oneDNN" in line
            or "absl" in line], err[-3000:]
    rc, _, err = _wwm_train(f"--bert_config_file={tmp_path / 'missing.json'}",
                            f"--output_dir={tmp_path / 'q'}", "--do_train",
                            f"--input_file={tiny_run['records']}", env=env)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "missing.json" in lines[0], err[-3000:]


def test_read_only_output_dir_is_refused_before_training(tiny_run, tmp_path):
    """A read-only file system (root ignores permission bits): one line, exit status 2, before
    the model is built."""
    ro = tmp_path / "ro"
    ro.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(ro)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here (needs root): {r.stderr.strip()}")
    try:
        for out in (ro, ro / "ckpt"):
            rc, _, err = _wwm_train(*_train_args(tiny_run, out))
            assert rc == 2, err[-3000:]
            lines = [line for line in err.splitlines() if not _OWN_LINE.match(line)]
            assert lines == [f"wwm-train: error: cannot write to --output_dir '{out}': "
                             f"Read-only file system"], err[-3000:]
            assert "random initialisation" not in err  # nothing was built
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
