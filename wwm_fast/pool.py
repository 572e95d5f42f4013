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
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from .shard import ShardJob, remove_stale_temporaries, run_shard
from .stats import ShardStats

__all__ = ["run_tasks", "TaskRun", "run_shards", "start_method", "progress_bar"]


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
                num_workers, mp_context=multiprocessing.get_context(start_method()))
            try:
                self._submit()
            except BaseException:
                self.close()
                raise

    def _submit(self):
        while not self._exhausted and (self._max_pending is None
                                       or len(self._pending) < self._max_pending):
            try:
                tag, args = next(self._tasks)
            except StopIteration:
                self._exhausted = True
                return
            self._pending.append((self._pool.submit(self._fn, *args), tag))

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        return self

    def __next__(self) -> Tuple[Any, Any]:
        if self._closed:
            raise StopIteration
        if self._pool is None:  # in this process
            tag, args = next(self._tasks)
            return tag, self._fn(*args)
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
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Cancel what has not started, wait for what runs, stop the workers."""
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            self._pending.clear()
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "TaskRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    return results


def _input_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
