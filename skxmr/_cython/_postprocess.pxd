# The post-processors of beam search (see skxmr/_postprocess.py for their meaning):
# ONE definition of the codes, shared by the kernels (cimport) and by Python
# (skxmr._cython._postprocess exports them as ints, which skxmr._postprocess reads).
#
# A child's path score is ``pp_combine(code, parent, pp_transform(code, power, s))``
# for its raw score ``s``; the root starts at ``pp_initial(code)``.
from libc.math cimport exp, log1p

cdef enum PostCode:
    PP_NOOP = 0          # the child's own raw score
    PP_HINGE = 1         # exp(-max(0, 1 - s) ** power), product
    PP_SIGMOID = 2       # 1 / (1 + exp(-s)), product
    PP_LOG_SIGMOID = 3   # log(sigmoid(s)), sum


cdef inline bint pp_valid(int code, int power) noexcept nogil:
    """Whether (code, power) is a post-processor the kernels know."""
    # Compared as ints (a comparison with the enum type would cast ``code`` to it,
    # an unsigned type for some compilers, and let negative codes through).
    return (<int> PP_NOOP <= code and code <= <int> PP_LOG_SIGMOID
            and (code != <int> PP_HINGE or power >= 1))


cdef inline double pp_initial(int code) noexcept nogil:
    """Path score of the root: the combiner's identity."""
    return 1.0 if (code == PP_HINGE or code == PP_SIGMOID) else 0.0


cdef inline double pp_transform(int code, int power, double s) noexcept nogil:
    """A child's transformed raw score (computed stably)."""
    cdef double t, tp, e
    cdef int i
    if code == PP_HINGE:
        t = 1.0 - s if s < 1.0 else 0.0
        tp = t
        for i in range(1, power):
            tp = tp * t
        return exp(-tp)
    if code == PP_SIGMOID:
        if s >= 0:
            return 1.0 / (1.0 + exp(-s))
        e = exp(s)
        return e / (1.0 + e)
    if code == PP_LOG_SIGMOID:
        if s >= 0:
            return -log1p(exp(-s))
        return s - log1p(exp(s))
    return s


cdef inline double pp_combine(int code, double parent, double child) noexcept nogil:
    """A child's path score from its parent's and its own transformed score."""
    if code == PP_HINGE or code == PP_SIGMOID:
        return parent * child
    if code == PP_LOG_SIGMOID:
        return parent + child
    return child


cdef inline double pp_path_score(int code, int power, double parent,
                                 double s) noexcept nogil:
    """``pp_combine(code, parent, pp_transform(code, power, s))``."""
    return pp_combine(code, parent, pp_transform(code, power, s))
