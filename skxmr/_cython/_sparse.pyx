"""Sparse-matrix helpers (OpenMP over rows)."""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport fabs, sqrt

from skxmr._cython._typedefs cimport intp_t, index_t


def _csr_row_normalize(floating[::1] data,        # INOUT CSR values
                       const index_t[::1] indptr,  # IN    CSR row pointers
                       int n_threads):
    """Scale every row of a CSR matrix to unit L2 norm in place.

    Each row is first divided by its largest absolute value, and the sum of
    squares is accumulated in double precision, so nothing overflows or underflows
    whatever the magnitude of the data. All-zero rows stay zero.
    """
    cdef intp_t n_rows = indptr.shape[0] - 1
    cdef intp_t row, p
    cdef double big, total, scale
    if n_rows <= 0:
        return
    for row in prange(n_rows, nogil=True, num_threads=n_threads, schedule="static"):
        big = 0
        for p in range(indptr[row], indptr[row + 1]):
            if fabs(data[p]) > big:
                big = fabs(data[p])
        if big == 0:
            continue
        total = 0
        for p in range(indptr[row], indptr[row + 1]):
            total = total + (data[p] / big) * (data[p] / big)
        scale = 1.0 / (big * sqrt(total))
        if scale == 0 or scale > 1e300:  # extreme magnitudes: divide in two steps
            for p in range(indptr[row], indptr[row + 1]):
                data[p] = <floating> ((data[p] / big) / sqrt(total))
        else:
            for p in range(indptr[row], indptr[row + 1]):
                data[p] = <floating> (data[p] * scale)
