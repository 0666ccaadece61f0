# Fixed-capacity top-k heap, nogil. The root holds the *worst* kept item, so a new
# item replaces it when it is better. "Better" = higher score, ties: smaller id.
# After ``heap_sort_best_first`` the arrays hold the kept items best first.
from cython cimport floating
from skxmr._cython._typedefs cimport intp_t


cdef inline bint _better(floating s1, intp_t i1, floating s2, intp_t i2) noexcept nogil:
    return s1 > s2 or (s1 == s2 and i1 < i2)


cdef inline void _sift_down(floating* vals, intp_t* ids, intp_t size,
                            intp_t pos) noexcept nogil:
    cdef intp_t child, worst
    cdef floating tv
    cdef intp_t ti
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        worst = child
        if child + 1 < size and _better(vals[child], ids[child],
                                        vals[child + 1], ids[child + 1]):
            worst = child + 1
        if _better(vals[worst], ids[worst], vals[pos], ids[pos]):
            return
        tv = vals[pos]; vals[pos] = vals[worst]; vals[worst] = tv
        ti = ids[pos]; ids[pos] = ids[worst]; ids[worst] = ti
        pos = worst


cdef inline intp_t heap_push(floating* vals, intp_t* ids, intp_t size, intp_t capacity,
                             floating val, intp_t idx) noexcept nogil:
    """Offer (val, idx) to the heap of ``size`` items; return the new size."""
    cdef intp_t pos, parent
    if capacity <= 0:
        return 0
    if size < capacity:
        pos = size
        vals[pos] = val
        ids[pos] = idx
        while pos > 0:
            parent = (pos - 1) // 2
            if _better(vals[pos], ids[pos], vals[parent], ids[parent]):
                break
            vals[pos], vals[parent] = vals[parent], vals[pos]
            ids[pos], ids[parent] = ids[parent], ids[pos]
            pos = parent
        return size + 1
    if _better(val, idx, vals[0], ids[0]):
        vals[0] = val
        ids[0] = idx
        _sift_down(vals, ids, size, 0)
    return size


cdef inline void heap_sort_best_first(floating* vals, intp_t* ids,
                                      intp_t size) noexcept nogil:
    """Sort the heap in place, best item first."""
    cdef intp_t end = size - 1
    while end > 0:
        vals[0], vals[end] = vals[end], vals[0]
        ids[0], ids[end] = ids[end], ids[0]
        _sift_down(vals, ids, end, 0)
        end -= 1
