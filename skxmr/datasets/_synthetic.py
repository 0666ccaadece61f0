"""Synthetic long-tail XMC data."""


def make_xmc_classification(*args, **kwargs):
    raise NotImplementedError  # being written
