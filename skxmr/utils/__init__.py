"""Small shared helpers (threads, validation). Private API."""

from skxmr.utils._openmp import effective_n_threads, openmp_enabled

__all__ = ["effective_n_threads", "openmp_enabled"]
