"""The local runner: work spread over a process pool on this machine, with a progress bar.

``run_tasks`` is the one process pool of the package: ``create`` runs its shards through it
(``run_shards``) and ``segment_files`` its chunks of lines. It owns the start method, how many tasks
are in flight, the order results come back in, and a clean shutdown on an error or Ctrl-C. It must
not know what a task computes, and a task's result must not depend on which worker ran it.

Start method (``start_method``): the one the program chose with
``multiprocessing.set_start_method``, if it chose one; else ``fork`` on Linux and ``spawn`` elsewhere.

* Speed: a forked worker starts at once and inherits the loaded vocab tables; a spawned one
  re-imports numpy and wwm_fast. Measured on the 2-core development machine, a fresh
  ``create`` with 2 workers over 2 small shards: pool time 0.13-0.29 s with fork, 0.8-1.2 s with
  forkserver, 1.4-1.8 s with spawn. A forked worker also needs no ``if __name__ == "__main__":``
  guard in the calling script.
* Safety: fork is unsafe when another thread holds a lock at the moment of the fork. wwm_fast's
  kernels join their threads before they return; the pool forks every worker before its manager
  thread starts (CPython >= 3.9 does so for fork) and the progress bar starts its thread after the
  pool; numpy's OpenBLAS pool and ltp-extension's Rust (rayon) pool are fork-aware (OpenBLAS stops
  its threads around a fork; ltp-extension turns its parallelism off in a child forked after the
  pool ran, with a warning on stderr, and segments correctly on one thread: measured). Segmenters
  are built inside the workers (``segment_files`` builds one in the parent only to validate the
  spec, and closes it unused). What fork cannot protect against is a thread pool of the caller's
  that is not fork-aware (TensorFlow's, torch's OpenMP threads after a parallel region): such a
  program calls ``multiprocessing.set_start_method("forkserver")`` (or ``"spawn"``) first.
* macOS and Windows spawn: fork is unsafe with the macOS system libraries (Python's own default
  there is spawn) and absent on Windows.

Until issue 12, ``create`` always forked and ``segment_files`` always spawned (written to keep
LTP's Rust pool out of forks, which ltp-extension handles itself, see above).

Ctrl-C acts within a fraction of a second, and no output is completed after it:

* in the workers, SIGINT (a terminal's Ctrl-C reaches the whole process group) calls
  ``files.cancel_outputs()``, so no output of that worker is renamed into place any more, and
  interrupts the task when one runs (an idle worker stays quiet: no traceback per worker);
* in the calling process, KeyboardInterrupt kills the workers (SIGKILL) instead of waiting for
  the tasks that run; the runner then removes their temporary files (``run_shards`` for create);
* work done in this process (``num_workers=1``, and compat mode) runs in a helper thread while the
  main thread waits (``run_interruptibly``): a native kernel can run for seconds without
  returning to Python, and Python handles signals only between bytecodes of the main thread.
  The interrupted thread is abandoned (a daemon thread) and its outputs are cancelled
  (``files.outputs_cancelled_by``): it can no longer rename one, and the next run of the same
  process (a notebook after Ctrl-C) writes as usual.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from .files import cancel_outputs, outputs_cancelled_by
from .shard import ShardJob, remove_stale_temporaries, run_shard
from .stats import ShardStats

__all__ = ["run_tasks", "TaskRun", "run_shards", "start_method", "progress_bar",
           "run_interruptibly", "abandoned_work"]


def start_method() -> str:
    """The start method of the pool's workers (see the module docstring for why)."""
    import multiprocessing

    chosen = multiprocessing.get_start_method(allow_none=True)
    if chosen is not None:
        return chosen
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def run_tasks(fn: Callable, tasks: Iterable[Tuple[Any, tuple]], num_workers: int, *,
              max_pending: Optional[int] = None, ordered: bool = False) -> "TaskRun":
    """``(tag, fn(*args))`` for each ``(tag, args)`` of ``tasks``, computed by ``num_workers``
    processes (1: in this process, in order, each task when its result is asked for).

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one) when
    ``num_workers > 1``. The workers start here, before this returns. ``tasks`` is consumed
    lazily: at most ``max_pending`` tasks are submitted and not yet collected (default: all at
    once). Results come back as they complete, or in submission order with ``ordered``. Use the
    result as a context manager: leaving it early, or an exception in a task (raised here),
    cancels the tasks that have not started and shuts the workers down.
    """
    return TaskRun(fn, tasks, num_workers, max_pending, ordered)


class TaskRun:
    """The iterator ``run_tasks`` returns (and a context manager that shuts the pool down)."""

    def __init__(self, fn, tasks, num_workers, max_pending, ordered):
        self._fn = fn
        self._tasks = iter(tasks)
        self._max_pending = max_pending
        self._ordered = ordered
        self._pending: deque = deque()
        self._exhausted = False
        self._closed = False
        self._pool = None
        if num_workers > 1:
            import concurrent.futures
            import multiprocessing

            self._pool = concurrent.futures.ProcessPoolExecutor(
                num_workers, mp_context=multiprocessing.get_context(start_method()),
                initializer=_init_worker)
            try:
                self._submit()
            except BaseException as e:
                self.close(kill=isinstance(e, KeyboardInterrupt))
                raise

    def _submit(self):
        while not self._exhausted and (self._max_pending is None
                                       or len(self._pending) < self._max_pending):
            try:
                tag, args = next(self._tasks)
            except StopIteration:
                self._exhausted = True
                return
            self._pending.append((self._pool.submit(_run_task, self._fn, *args), tag))

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        return self

    def __next__(self) -> Tuple[Any, Any]:
        if self._closed:
            raise StopIteration
        if self._pool is None:  # in this process
            tag, args = next(self._tasks)
            return tag, run_interruptibly(self._fn, *args)
        try:
            self._submit()
            if not self._pending:
                self.close()
                raise StopIteration
            if self._ordered:
                fut, tag = self._pending.popleft()
            else:
                import concurrent.futures

                done, _ = concurrent.futures.wait(
                    [f for f, _ in self._pending],
                    return_when=concurrent.futures.FIRST_COMPLETED)
                k = next(i for i, (f, _) in enumerate(self._pending) if f in done)
                fut, tag = self._pending[k]
                del self._pending[k]
            return tag, fut.result()
        except StopIteration:
            raise
        except BaseException as e:
            self.close(kill=isinstance(e, KeyboardInterrupt))
            raise

    def close(self, kill: bool = False) -> None:
        """Cancel what has not started, wait for what runs, stop the workers; ``kill``
        (KeyboardInterrupt): the workers are killed at once, the tasks that run are not waited
        for (their temporary files are the runner's to remove)."""
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            self._pending.clear()
            if kill:
                # ProcessPoolExecutor has no public kill before Python 3.14 (kill_workers)
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    with contextlib.suppress(OSError, AttributeError, ValueError):
                        proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "TaskRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(kill=exc_type is not None and issubclass(exc_type, KeyboardInterrupt))


# -- Ctrl-C ----------------------------------------------------------------------------------------

_task_running = False  # in a worker: a task runs now (SIGINT interrupts it)


def _init_worker() -> None:
    """A worker's SIGINT handler: no more renames of its outputs; interrupt the running task."""
    signal.signal(signal.SIGINT, _worker_sigint)


def _worker_sigint(signum, frame) -> None:
    cancel_outputs()
    if _task_running:
        raise KeyboardInterrupt
    # idle: the parent stops the pool; a KeyboardInterrupt here would print a traceback


def _run_task(fn: Callable, *args):
    global _task_running
    _task_running = True
    try:
        return fn(*args)
    finally:
        _task_running = False


_WORK_THREAD = "wwm-fast-work"
_abandoned: set = set()  # run_interruptibly's interrupted helper threads that still run


def abandoned_work() -> bool:
    """A helper thread of ``run_interruptibly`` that was interrupted still runs (inside a native
    kernel): the process must end with ``os._exit``. A normal exit finalizes the interpreter
    under it, and when the kernel returns, pybind11 takes the GIL back in a noexcept destructor
    while CPython ends the thread: std::terminate (seen as "terminate called without an active
    exception", exit status -6)."""
    return bool(_abandoned)


def run_interruptibly(fn: Callable, *args):
    """``fn(*args)`` in a helper thread while the main thread waits, so that Ctrl-C acts within
    0.1 s even while ``fn`` is inside a native kernel (Python handles signals only between
    bytecodes of the main thread). On KeyboardInterrupt the helper thread is abandoned and its
    outputs are cancelled (``files.outputs_cancelled_by``): it cannot complete one any more.
    Called outside the main thread, it simply calls ``fn``."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return fn(*args)
    outcome: dict = {}
    token = threading.Event()
    done = threading.Event()

    def work():
        try:
            with outputs_cancelled_by(token):
                outcome["value"] = fn(*args)
        except BaseException as e:  # handed to the main thread
            outcome["error"] = e
        finally:
            _abandoned.discard(thread)
            done.set()

    thread = threading.Thread(target=work, name=_WORK_THREAD, daemon=True)
    try:
        thread.start()  # (Ctrl-C can arrive while start() waits for the thread)
        # an Event, not Thread.join: a join interrupted by Ctrl-C marks a running thread as
        # stopped (CPython's bpo-45274 handling), and is_alive() would then lie
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        cancel_outputs(token)
        if not done.is_set():
            _abandoned.add(thread)
        raise
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome["value"]


# -- progress --------------------------------------------------------------------------------------


class _NoBar:
    """What a disabled progress bar does (tqdm is not even imported)."""

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def close(self):
        pass


def progress_bar(total: float, desc: str, enabled: bool, *, terminal_only: bool = False):
    """A tqdm bar over ``total`` bytes on stderr (``terminal_only``: silent when stderr is not a
    terminal, e.g. in logs), or an object with the same methods that shows nothing."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                file=sys.stderr, dynamic_ncols=True, disable=None if terminal_only else False)


# -- create's shards -------------------------------------------------------------------------------


def run_shards(inputs: Sequence[str], outputs: Sequence[str], job: ShardJob, *, num_workers: int,
               overwrite: bool, progress: bool) -> List[ShardStats]:
    """``run_shard`` over every (input, output) pair with ``num_workers`` processes (already
    resolved); the ``ShardStats`` in input order. A progress bar counts the input bytes done."""
    remove_stale_temporaries(list(outputs))
    sizes = [_input_size(p) for p in inputs]
    results: List[Optional[ShardStats]] = [None] * len(inputs)
    tasks = [(i, (i, p, o, job, overwrite)) for i, (p, o) in enumerate(zip(inputs, outputs))]
    t0 = time.perf_counter()
    try:
        # the workers are forked here, before the progress bar starts its thread
        with run_tasks(run_shard, tasks, num_workers) as shards:
            bar = progress_bar(sum(sizes), "create", progress)
            try:
                for i, stats in shards:
                    results[i] = stats
                    bar.update(sizes[i])
                    n_inst = sum(s.instances for s in results if s is not None and not s.skipped)
                    bar.set_postfix(instances=f"{n_inst:,}",
                                    per_s=f"{n_inst / max(1e-9, time.perf_counter() - t0):,.0f}")
            finally:
                bar.close()
    except KeyboardInterrupt:  # killed workers (or an abandoned thread) left temporary files
        remove_stale_temporaries(list(outputs))
        raise
    return results


def _input_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
