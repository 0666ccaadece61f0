"""The bundled Debian debtags dataset."""


def load_debian_debtags(*args, **kwargs):
    raise NotImplementedError  # being written
