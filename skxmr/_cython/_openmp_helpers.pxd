# OpenMP declarations that compile with and without OpenMP: one preprocessor switch.
cdef extern from *:
    """
    #ifdef _OPENMP
    #  include <omp.h>
    #  define SKXMR_OPENMP_ENABLED 1
    #else
    #  define SKXMR_OPENMP_ENABLED 0
    #  define omp_get_max_threads() 1
    #  define omp_get_thread_num() 0
    #endif
    """
    bint SKXMR_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
