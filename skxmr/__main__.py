"""``python -m skxmr`` and the ``skxmr`` console script; the command line
lives in :mod:`skxmr._cli`."""

import sys

from skxmr._cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
