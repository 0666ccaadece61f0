"""Compiled kernels (Cython). Private: call them through the Python wrappers."""
