# LSD radix sort of packed ``(feature << 32) | position`` keys by feature, nogil.
# Used to group sparse entries by feature with O(n) scratch (no table over all
# features). Stable, so equal features keep their positions in increasing order.
from libc.stdint cimport uint64_t
from libc.string cimport memset

from skxmr._cython._typedefs cimport intp_t

cdef enum:
    RADIX_BITS = 11
    RADIX_SIZE = 2048
    SMALL_SORT = 64


cdef inline uint64_t* sort_by_feature(uint64_t* keys, uint64_t* tmp, intp_t n,
                                      uint64_t max_feature) noexcept nogil:
    """Stable sort of ``(feature << 32) | position`` keys by feature.

    Returns the buffer holding the result (``keys`` or ``tmp``).
    """
    cdef intp_t counts[RADIX_SIZE]
    cdef intp_t i, j, total, c
    cdef int shift
    cdef uint64_t key, digit
    cdef uint64_t* src = keys
    cdef uint64_t* dst = tmp
    cdef uint64_t* swap
    if n <= SMALL_SORT:
        # Insertion sort on the whole key (positions are distinct and increasing).
        for i in range(1, n):
            key = keys[i]
            j = i - 1
            while j >= 0 and keys[j] > key:
                keys[j + 1] = keys[j]
                j -= 1
            keys[j + 1] = key
        return keys
    shift = 32
    while (max_feature >> (shift - 32)) > 0:
        memset(counts, 0, sizeof(counts))
        for i in range(n):
            counts[(src[i] >> shift) & (RADIX_SIZE - 1)] += 1
        total = 0
        for i in range(RADIX_SIZE):
            c = counts[i]
            counts[i] = total
            total += c
        for i in range(n):
            digit = (src[i] >> shift) & (RADIX_SIZE - 1)
            dst[counts[digit]] = src[i]
            counts[digit] += 1
        swap = src
        src = dst
        dst = swap
        shift += RADIX_BITS
        if shift >= 64:
            break
    return src
