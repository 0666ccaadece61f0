"""Datasets: the Extreme Classification Repository text format, a bundled real
dataset (Debian package descriptions and their debtags), and a synthetic generator."""

from skxmr.datasets._debian import load_debian_debtags
from skxmr.datasets._synthetic import make_xmc_classification
from skxmr.datasets._xmc_format import dump_xmc_file, load_xmc_file

__all__ = [
    "dump_xmc_file",
    "load_debian_debtags",
    "load_xmc_file",
    "make_xmc_classification",
]
