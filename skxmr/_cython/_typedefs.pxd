# Shared C types for the kernels.
cimport numpy as cnp

ctypedef cnp.npy_intp intp_t
ctypedef cnp.int32_t int32_t
ctypedef cnp.int64_t int64_t

# CSR/CSC index arrays are int32 or int64.
ctypedef fused index_t:
    cnp.int32_t
    cnp.int64_t
