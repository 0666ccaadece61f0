# Small nogil random number helpers shared by the kernels.
from libc.stdint cimport uint64_t
from skxmr._cython._typedefs cimport intp_t


cdef inline uint64_t _splitmix64(uint64_t* state) noexcept nogil:
    """Next 64-bit output of the splitmix64 generator; advances ``state``."""
    cdef uint64_t z
    state[0] += <uint64_t> 0x9E3779B97F4A7C15
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline uint64_t _node_seed(uint64_t seed, intp_t node) noexcept nogil:
    """A seed for tree node ``node``: depends on ``seed`` and the node only, so
    results do not depend on which thread handles the node."""
    cdef uint64_t state = seed ^ (<uint64_t> node * <uint64_t> 0xD1B54A32D192ED03)
    return _splitmix64(&state)
