"""Optional progress bars for long steps (fits, encodes, batch predictions).

``progress(iterable, verbose=...)`` wraps an iterable (or counts ``update()``
calls when ``total`` is given) with a tqdm bar on stderr when ``verbose`` is
truthy and tqdm can be imported. tqdm stays optional: it is imported only here,
only when ``verbose`` asks for a bar, never at ``import skxmr``. Without tqdm a
verbose step prints a few plain lines instead; with ``verbose=0`` nothing is
written and nothing is imported.
"""

import sys
import time

__all__ = ["progress"]


def progress(iterable=None, *, total=None, desc=None, unit="it", verbose=0,
             file=None):
    """A progress bar over ``iterable`` (or of ``total`` steps).

    Parameters
    ----------
    iterable : iterable, default=None
        What to iterate over; None for a bar advanced by ``update(n)``.
    total : int, default=None
        Number of steps (taken from ``len(iterable)`` when possible).
    desc : str, default=None
        Label shown before the bar.
    unit : str, default="it"
        Name of one step.
    verbose : int or bool, default=0
        Falsy: a silent stand-in with the same methods (nothing imported,
        nothing written). Truthy: a tqdm bar, or plain lines without tqdm.
    file : file object, default=None
        Where to write (default: ``sys.stderr`` at the time of the call).

    Returns
    -------
    bar : tqdm.tqdm or a stand-in
        Iterable (when ``iterable`` is given) and a context manager, with
        ``update(n=1)``, ``set_postfix_str(s)`` and ``close()``.

    Examples
    --------
    >>> from skxmr._progress import progress
    >>> [level for level in progress(range(3), desc="levels", verbose=0)]
    [0, 1, 2]
    >>> with progress(total=2, verbose=0) as bar:
    ...     bar.update(2)
    """
    if total is None and iterable is not None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    if not verbose:
        return _Silent(iterable)
    file = sys.stderr if file is None else file
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(iterable, total=total, desc=desc, unit=unit, file=file)
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=file,
                dynamic_ncols=True, leave=True)


class _Silent:
    """No output; the subset of tqdm's interface skxmr uses."""

    def __init__(self, iterable=None):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n=1):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass

    def close(self):
        pass


class _Plain(_Silent):
    """Plain lines ``desc: i/total unit`` (at most one every few seconds,
    plus the last), for a verbose step when tqdm is not installed."""

    _EVERY = 5.0  # seconds between lines

    def __init__(self, iterable=None, *, total=None, desc=None, unit="it", file=None):
        super().__init__(iterable)
        self.total = total
        self.desc = desc or "progress"
        self.unit = unit
        self.file = file
        self.n = 0
        self._postfix = ""
        self._start = self._last = time.perf_counter()
        self._closed = False

    def __iter__(self):
        try:
            for item in self._iterable:
                yield item
                self.update()
        finally:
            self.close()

    def _line(self, final=False):
        of = f"/{self.total}" if self.total is not None else ""
        elapsed = time.perf_counter() - self._start
        tail = f" ({self._postfix})" if self._postfix else ""
        done = ", done" if final else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}{tail}, {elapsed:.1f} s{done}",
              file=self.file, flush=True)

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if now - self._last >= self._EVERY:
            self._last = now
            self._line()

    def set_postfix_str(self, s="", refresh=True):
        self._postfix = s

    def close(self):
        if not self._closed:
            self._closed = True
            self._line(final=True)
