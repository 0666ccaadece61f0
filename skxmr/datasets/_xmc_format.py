"""Reader and writer for the Extreme Classification Repository text format."""


def load_xmc_file(path):
    raise NotImplementedError  # being written


def dump_xmc_file(X, Y, path):
    raise NotImplementedError  # being written
