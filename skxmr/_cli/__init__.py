"""The ``skxmr`` command line (also ``python -m skxmr``): demo, train, predict,
evaluate, versions.

Data files (``DATA``), read by :mod:`skxmr._cli._data`:

- an Extreme Classification Repository file (the first line ``n_rows n_features
  n_labels``, then ``labels features`` per row), read with
  :func:`skxmr.datasets.load_xmc_file`;
- a pair of ``.npz`` sparse matrices ``X.npz Y.npz`` (``scipy.sparse.save_npz``);
  for ``predict`` the ``X.npz`` alone;
- a text file ``.tsv`` with one document per line, ``label,label<TAB>text``
  (for ``predict`` also a file of plain texts, no tab on any line). A model
  trained on texts holds its TF-IDF vectorizer.

A model is a directory (:mod:`skxmr._cli._model_dir`): the classifier written
with :func:`skxmr.save` (never unpickled), for text models the TF-IDF
vectorizer (written with ``skxmr._persistence.save_vectorizer``, the same safe
container), and a manifest of the files ``skxmr train`` wrote.

Exit codes: 0 success, 1 a bad file or a failed step (one line
``skxmr COMMAND: error: ...`` on stderr, no traceback), 2 bad command-line
usage (argparse, with the usage text), 130 interrupted.

Progress: one line per step on stderr, and progress bars (tqdm, when installed)
for the long steps (training the tree levels, predicting in blocks of rows)
when stderr is a terminal or with ``--verbose``; ``--quiet`` prints nothing but
errors. Python warnings are printed as one line ``skxmr COMMAND: warning: ...``
(never inside a progress line) and silenced by ``--quiet``.

Layout: ``_main`` (parser, ``main``), ``_console`` (stderr), ``_commands``
(train, predict, evaluate), ``_data`` (reading DATA), ``_model_dir`` (the model
directory), ``_demo`` (``skxmr demo``).
"""

from skxmr._cli._console import CLIError
from skxmr._cli._main import build_parser, main

__all__ = ["CLIError", "build_parser", "main"]
