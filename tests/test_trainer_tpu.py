"""TPU resolution without a TPU: every way of asking for one fails fast with a message that names
what was tried; nothing hangs. Each case is a real `wwm-train` process under a timeout."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("tensorflow")

from trainer_helpers import TINY, write_config, write_synthetic_records  # noqa: E402

SEQ, PRED = 32, 5
TPU_ENV = ("TPU_NAME", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS", "TPU_CONFIG")
ADVICE = "On a TPU VM pass --tpu_name=local"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tpu")
    return {"config": write_config(d / "bert_config.json"),
            "input": write_synthetic_records(d / "part.tfrecord", 16, seq_len=SEQ, max_pred=PRED,
                                             vocab_size=TINY["vocab_size"]),
            "out": str(d / "out")}


def _wwm_train(files, extra, env_extra=None, timeout=180):
    """Runs `wwm-train --use_tpu ...` with none of the TPU variables of this machine's environment
    but those in env_extra; returns (exit code, stderr, seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in TPU_ENV}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **(env_extra or {}))
    argv = [sys.executable, "-m", "wwm_trainer.cli", f"--bert_config_file={files['config']}",
            f"--input_file={files['input']}", f"--output_dir={files['out']}", "--do_train",
            f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}", "--train_batch_size=8",
            "--num_train_steps=1", "--num_warmup_steps=0", "--use_tpu", *extra]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"wwm-train {' '.join(extra)} hung: no answer after {timeout} s")
    return proc.returncode, proc.stderr, time.monotonic() - t0


def _free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("extra, env, match", [
    # 0: nothing to resolve: no flag, no TPU_NAME, not on a TPU VM
    ([], {}, r"none was found for --tpu_name=None \(TPU_NAME, KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS and "
             r"TPU_CONFIG not set\): ValueError: Please provide a TPU Name to connect to"),
    # 1: a TPU VM's name, on a machine without TPU chips: initialize_tpu_system finds none
    (["--tpu_name=local"], {}, r"none was found for --tpu_name='local'.*NotFoundError: TPUs not found"),
    # 2: TPU_NAME=local is the same as --tpu_name=local (TF would look 'local' up in the TPU API)
    ([], {"TPU_NAME": "local"}, r"none was found for --tpu_name=None \(TPU_NAME='local'\).*"
                                r"NotFoundError: TPUs not found"),
    # 3: a TPU node name: the GCE metadata / Cloud TPU API lookup fails
    (["--tpu_name=my-tpu"], {}, r"none was found for --tpu_name='my-tpu': \w+"),
    # 4: the same name from TPU_NAME, no flag: TPUClusterResolver() reads it
    ([], {"TPU_NAME": "my-tpu"}, r"none was found for --tpu_name=None \(TPU_NAME='my-tpu'\): \w+"),
])
def test_no_tpu_fails_fast_with_a_clear_message(files, extra, env, match):
    code, err, _ = _wwm_train(files, extra, env)
    assert code == 2, err[-2000:]
    assert re.search(match, err), err[-2000:]
    assert ADVICE in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["master", "TPU_NAME"])
def test_grpc_address_with_nothing_listening(files, how):
    """TF's experimental_connect_to_cluster waits forever for a grpc worker that is not there (it
    hung past 60 s before this check); a TCP connection first turns that into an error."""
    address = f"grpc://127.0.0.1:{_free_port()}"
    extra, env = ([f"--master={address}"], {}) if how == "master" else ([], {"TPU_NAME": address})
    code, err, _ = _wwm_train(files, extra, env)
    assert code == 2, err[-2000:]
    assert re.search(rf"it resolved to {address}: nothing answers at 127\.0\.0\.1:\d+ "
                     r"\(Connection refused\)", err), err[-2000:]


def test_address_that_never_answers(files):
    """A server that accepts the TCP connection and never answers (TF's connect would wait
    forever): the worker service's GetStatus call, with a deadline, says so."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        address = f"grpc://127.0.0.1:{server.getsockname()[1]}"
        code, err, _ = _wwm_train(files, [f"--master={address}", "--tpu_connect_timeout=5"])
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert code == 2, err[-2000:]
    assert re.search(rf"it resolved to {address}: 127\.0\.0\.1:\d+ accepts connections, but no "
                     r"TensorFlow worker answered within 5 s \(DEADLINE_EXCEEDED\)", err), err[-2000:]
    assert held  # it did connect: the TCP check alone would have passed


def test_watchdog_stops_a_call_that_holds_the_gil(tmp_path):
    """The last resort of --tpu_connect_timeout: a C call that blocks holding the GIL (as TF's
    connect does) is stopped by the watcher process, with the message on stderr."""
    code = ("import ctypes\n"
            "from wwm_trainer.distribute import _Watchdog\n"
            "with _Watchdog(3, 'connecting took too long'):\n"
            "    ctypes.PyDLL(None).sleep(120)\n")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100)
    assert time.monotonic() - t0 < 60
    assert proc.returncode == -15, proc.stderr[-2000:]  # SIGTERM
    assert proc.stderr.endswith("wwm-train: error: connecting took too long\n"), proc.stderr[-2000:]
    # and when the body ends in time, the watcher leaves quietly
    ok = subprocess.run([sys.executable, "-c", "from wwm_trainer.distribute import _Watchdog\n"
                         "with _Watchdog(30, 'x'):\n    pass\nprint('done')"],
                        capture_output=True, text=True, timeout=100)
    assert ok.returncode == 0 and ok.stdout == "done\n" and "wwm-train: error" not in ok.stderr
