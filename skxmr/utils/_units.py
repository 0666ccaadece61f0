"""Independent units of work run through joblib (e.g. on a Dask cluster).

Training takes this path when a joblib backend other than the default
(``"loky"``) or ``"sequential"`` is active, for instance inside
``joblib.parallel_config(backend="dask")`` with a ``dask.distributed.Client``;
otherwise nothing here runs and a fit stays one process with OpenMP threads.
What a unit is (subtrees, node ranges, label subtrees) is decided by the
training modules (``skxmr._xrlinear_training``, ``skxmr._tree_building``); this
module only runs units and gathers their results.

With joblib's dask backend the units are submitted to the backend's client as
futures, each unit's arrays scattered once to one worker (``_DaskUnits``: joblib's
own dask backend waits forever when a worker dies); with other backends (e.g.
``"threading"``) they go through ``joblib.Parallel``. Nothing here imports dask
unless its backend is active.
"""

import joblib
import numpy as np
import scipy.sparse as sp

from skxmr.utils._openmp import effective_n_threads

__all__ = ["units_active", "slots", "unit_n_jobs", "start_units", "UNITS_PER_SLOT"]

# Test seam: when set (in a worker process), called at the start of every unit.
_unit_hook = None

# Units per joblib worker slot (more, smaller units balance the load better).
UNITS_PER_SLOT = 4


def _local_backend_classes():
    backends = joblib.parallel.BACKENDS
    return tuple(backends[name] for name in ("loky", "sequential") if name in backends)


def units_active():
    """Whether training should be cut into joblib units: a joblib backend other
    than the default one (``"loky"``) or ``"sequential"`` is active."""
    backend, _ = joblib.parallel.get_active_backend()
    return not isinstance(backend, _local_backend_classes())


def slots():
    """Units the active joblib backend runs at once (at least 1)."""
    backend, n_jobs = joblib.parallel.get_active_backend()
    if not isinstance(n_jobs, int) or n_jobs == 0:
        n_jobs = -1
    try:
        return max(1, int(backend.effective_n_jobs(n_jobs)))
    except Exception:  # pragma: no cover - a backend without workers yet
        return 1


def unit_n_jobs(n_jobs):
    """OpenMP threads of one unit: ``n_jobs`` when given (resolved where the unit
    runs); None: the worker's own default (dask's nanny sets OMP_NUM_THREADS=1 in
    its workers, so one thread per worker thread), or, for a thread-based
    backend, this machine's threads shared between the concurrent units."""
    if n_jobs is not None:
        return n_jobs
    backend, _ = joblib.parallel.get_active_backend()
    if getattr(backend, "uses_threads", False):
        return max(1, effective_n_threads(None) // slots())
    return None


def _call_unit(function, index, *args):
    """Run one unit; the index comes back with the result (results arrive in
    completion order)."""
    if _unit_hook is not None:
        _unit_hook()
    return index, function(*args)


def start_units(jobs, costs):
    """Submit every unit ``(function, args)`` of ``jobs`` (largest cost first),
    all at once; returns a callable that waits and gives the results in order.

    With joblib's dask backend the units go to the backend's client as futures
    (see ``_DaskUnits``); with any other backend through ``joblib.Parallel``.
    An error raised by a unit itself is raised as is; no partial result is ever
    returned.
    """
    order = np.argsort(-np.asarray(costs, dtype=np.float64), kind="stable").tolist()
    if len(jobs) == 0:
        return lambda: []
    backend, _ = joblib.parallel.get_active_backend()
    client = getattr(backend, "client", None)
    if client is not None and type(backend).__name__ == "DaskDistributedBackend":
        return _DaskUnits(client, jobs, order).collect
    results = joblib.Parallel(return_as="generator_unordered", pre_dispatch="all",
                              batch_size=1)(
        joblib.delayed(_call_unit)(jobs[i][0], i, *jobs[i][1]) for i in order)

    def collect():
        out = [None] * len(jobs)
        for index, value in results:
            out[index] = value
        return out

    return collect


class _DaskUnits:
    """Units as futures of a ``dask.distributed`` client.

    joblib's dask backend never completes a job whose worker died (the task
    ends in error without calling joblib back), so ``Parallel`` would wait
    forever; the units are therefore submitted to the backend's own client.
    Each unit's arrays are scattered once, to one worker (the task then runs
    where its data is). A worker that dies while running a unit makes dask run
    the task again elsewhere (``distributed.scheduler.allowed-failures``); if
    the unit's scattered data died with it, or the task failed too often, the
    unit is submitted again, with its data scattered anew, up to
    ``_UNIT_RETRIES`` times, after which a ``RuntimeError`` says so.
    """

    def __init__(self, client, jobs, order):
        self.client = client
        self.jobs = jobs
        self._scattered = {}  # id(array) -> future: an array shared by units goes once
        self.futures = self._submit(order)

    def _submit(self, indices):
        futures = {}
        for i in indices:
            for attempt in range(_UNIT_RETRIES + 1):
                try:
                    futures[self._submit_one(i)] = i
                    break
                except Exception as exc:  # e.g. scattering to a dying worker
                    if not _worker_lost(exc):
                        raise
                    if attempt == _UNIT_RETRIES:
                        self._give_up(1, attempt + 1, exc)
                    self._scattered.clear()
                    self.client.wait_for_workers(1, timeout=60)
        return futures

    def _submit_one(self, i):
        function, args = self.jobs[i]
        args = list(args)
        big = [j for j, a in enumerate(args) if sp.issparse(a)
               or (isinstance(a, np.ndarray) and a.nbytes > 100_000)]
        new = [j for j in big if id(args[j]) not in self._scattered]
        if new:
            scattered = self.client.scatter([args[j] for j in new], hash=False)
            for j, future in zip(new, scattered):
                self._scattered[id(args[j])] = future
        for j in big:
            args[j] = self._scattered[id(args[j])]
        return self.client.submit(_call_unit, function, i, *args, pure=False)

    def _give_up(self, n_lost, failures, error):
        raise RuntimeError(
            f"{n_lost} of {len(self.jobs)} training units failed because a worker "
            f"died or lost their data, {failures} times in a row; the fit was "
            f"aborted and left no model ({type(error).__name__}: {error})"
        ) from error

    def collect(self):
        from distributed import as_completed

        out = [None] * len(self.jobs)
        failures = 0
        pending = dict(self.futures)
        try:
            while pending:
                lost = []
                for future in as_completed(list(pending)):
                    i = pending.pop(future)
                    try:
                        index, value = future.result()
                    except Exception as exc:
                        if not _worker_lost(exc):
                            raise
                        lost.append(i)
                        error = exc
                        continue
                    out[index] = value
                if lost:
                    failures += 1
                    if failures > _UNIT_RETRIES:
                        self._give_up(len(lost), failures, error)
                    self._scattered.clear()  # it may have died with the worker
                    pending = self._submit(lost)
        finally:
            if pending:
                self.client.cancel(list(pending))
        return out


# Resubmissions of the unfinished units after a worker was lost.
_UNIT_RETRIES = 2

# Exceptions (by class name, dask's or concurrent.futures') that mean a worker
# died or its data was lost, rather than an error of the unit itself.
_LOST_WORKER_ERRORS = {"KilledWorker", "FutureCancelledError", "CancelledError",
                       "CommClosedError"}


def _worker_lost(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ in _LOST_WORKER_ERRORS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
