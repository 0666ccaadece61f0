"""What the command prints on stderr: step lines, warnings and errors.

Every message is one line. A step line (``reading data ...``) stays open
while the step runs and gets its time at the end (``reading data ... 0.1 s``);
a warning or an error printed meanwhile first ends the open line, so it never
lands in the middle of it, and the step's time then comes on a line of its
own (``reading data: 0.1 s``). While a tqdm bar is drawn, lines go through
``tqdm.write`` so the bar is cleared and redrawn below them.
"""

import sys
import time

__all__ = ["CLIError", "Console", "progress_level"]


class CLIError(Exception):
    """A user-facing error: printed as one line ``skxmr COMMAND: error: ...``,
    exit code 1."""


def progress_level(args):
    """Verbosity of the long steps: 0 with ``--quiet``, 1 with ``--verbose``,
    else 1 when stderr is a terminal."""
    if getattr(args, "quiet", False):
        return 0
    if getattr(args, "verbose", False):
        return 1
    return int(sys.stderr.isatty())


def _one_line(text):
    return " ".join(str(text).split())


class Console:
    """stderr of one command run (``skxmr COMMAND``).

    Parameters
    ----------
    command : str
        The command's name, the prefix of warnings and errors.
    quiet : bool
        No step lines and no warnings (errors are always printed).
    verbose : int
        Whether long steps show a progress bar (see :func:`progress_level`).
    """

    def __init__(self, command, *, quiet=False, verbose=0):
        self.prefix = f"skxmr {command}" if command else "skxmr"
        self.quiet = quiet
        self.verbose = verbose
        self._open = None  # the message of the step line still open
        self._broken = False  # the open step line was ended by another line

    # ----------------------------------------------------------- low level
    @staticmethod
    def _stream():
        return sys.stderr  # looked up at each write (pytest swaps it)

    def _write_line(self, text):
        """Write ``text`` as a whole line, ending an open step line first."""
        stream = self._stream()
        if self._open is not None and not self._broken:
            print(file=stream, flush=True)
            self._broken = True
        tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
        if tqdm is not None and getattr(tqdm, "_instances", None):
            tqdm.write(text, file=stream)
            stream.flush()
        else:
            print(text, file=stream, flush=True)

    # ------------------------------------------------------------ messages
    def error(self, message):
        """``skxmr COMMAND: error: message`` (also with ``--quiet``)."""
        self._write_line(f"{self.prefix}: error: {_one_line(message)}")

    def warning(self, message):
        """``skxmr COMMAND: warning: message`` (nothing with ``--quiet``)."""
        if not self.quiet:
            self._write_line(f"{self.prefix}: warning: {_one_line(message)}")

    def show_warning(self, message, category, filename, lineno, file=None,
                     line=None):
        """A replacement for :func:`warnings.showwarning`: one line, no source."""
        text = str(message)
        if category is not None and category is not UserWarning:
            text = f"{category.__name__}: {text}"
        self.warning(text)

    # --------------------------------------------------------------- steps
    def step(self, message, func, *args, bar=False, **kwargs):
        """Run ``func(*args, **kwargs)`` as the step ``message`` and return its
        result. The line ``message ...`` is printed before and the elapsed
        time after; a step that shows its own progress bar (``bar=True`` and
        ``verbose``) gets its line before the bar and its time after it."""
        if self.quiet:
            return func(*args, **kwargs)
        start = time.perf_counter()
        stream = self._stream()
        own_line = bool(bar and self.verbose)
        print(f"{message} ...", end="\n" if own_line else "", file=stream, flush=True)
        self._open, self._broken = message, own_line
        try:
            result = func(*args, **kwargs)
        except BaseException:
            if not self._broken:  # the error message goes on a new line
                print(file=stream, flush=True)
            self._open, self._broken = None, False
            raise
        elapsed = f"{time.perf_counter() - start:.1f} s"
        print(f"{message}: {elapsed}" if self._broken else f" {elapsed}",
              file=self._stream(), flush=True)
        self._open, self._broken = None, False
        return result
