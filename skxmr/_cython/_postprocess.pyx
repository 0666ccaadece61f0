"""The post-processor codes of the kernels, for Python (see ``_postprocess.pxd``).

``skxmr._postprocess`` builds its registry from these integers, so the codes have
one definition. The ``_transform``/``_path_score`` wrappers run the kernels'
inline functions on arrays (tests compare them with the Python reference).
"""

import numpy as np

NOOP = PP_NOOP
HINGE = PP_HINGE
SIGMOID = PP_SIGMOID
LOG_SIGMOID = PP_LOG_SIGMOID


def _initial(int code):
    """The root's path score of ``code`` (test wrapper of ``pp_initial``)."""
    if not pp_valid(code, 1):
        raise ValueError(f"unknown post-processor code {code}")
    return pp_initial(code)


def _path_score(int code, int power, parent, s):
    """``pp_path_score`` elementwise over broadcast float64 arrays (test wrapper);
    with ``parent=None``, ``pp_transform`` alone."""
    if not pp_valid(code, power):
        raise ValueError(f"unknown post-processor code {code} (power {power})")
    cdef bint transform_only = parent is None
    s_arr, p_arr = np.broadcast_arrays(np.asarray(s, dtype=np.float64),
                                       np.asarray(0.0 if transform_only else parent,
                                                  dtype=np.float64))
    cdef const double[::1] sv = np.ascontiguousarray(s_arr).ravel()
    cdef const double[::1] pv = np.ascontiguousarray(p_arr).ravel()
    out = np.empty(sv.shape[0], dtype=np.float64)
    cdef double[::1] ov = out
    cdef Py_ssize_t i
    with nogil:
        for i in range(sv.shape[0]):
            if transform_only:
                ov[i] = pp_transform(code, power, sv[i])
            else:
                ov[i] = pp_path_score(code, power, pv[i], sv[i])
    return out.reshape(s_arr.shape)
