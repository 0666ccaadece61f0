"""Balanced k-means for one level of the label tree (OpenMP over nodes, or inside
one node when a level has fewer nodes than threads).

Every node of a level holds a contiguous range of items (label vectors, rows of a
CSR matrix Z with unit-norm rows for the spherical mode). Each node is split into
``n_children[node]`` children of exact sizes ``s // f`` or ``s // f + 1`` (the first
``s % f`` children get one more), by balanced k-means:

1. initial centroids: ``f`` distinct random items of the node (a per-node seed
   derived from ``seed`` and the node's position, so results do not depend on the
   number of threads);
2. similarities: cosine (spherical) or ``2 x.c - |c|^2`` (Euclidean); for two
   children only their difference, ``x . (c_0 - c_1)`` (one product a nonzero);
3. balanced assignment: for two children, the optimal cut of the items sorted by
   ``sim_0 - sim_1``; otherwise candidate (item, child) pairs among each item's best
   ``N_CANDIDATES`` children are taken greedily by decreasing similarity (ties:
   item order) while the child has room (a radix sort of 64-bit keys); items left
   over take their best child that still has room;
4. centroids: the (normalised, if spherical) mean of their items; stop when at
   most ``tol * n_items`` items changed child in a round, or after ``max_iter``
   rounds.

The items of each node are finally reordered so that each child's items are
contiguous (children in order, items in their previous relative order).
"""

from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free, qsort
from libc.string cimport memset

from skxmr._cython._random cimport _node_seed, _splitmix64
from skxmr._cython._typedefs cimport intp_t, int32_t

import numpy as np

cdef enum:
    N_CANDIDATES = 4


cdef int _cmp_keys(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*> a)[0]
    cdef uint64_t y = (<const uint64_t*> b)[0]
    return -1 if x < y else (1 if x > y else 0)


cdef inline uint64_t _descending_key(float sim, intp_t position) noexcept nogil:
    """Sort key: ascending keys = decreasing similarity, then increasing position."""
    cdef uint32_t bits = (<uint32_t*> &sim)[0]
    if bits & 0x80000000u:
        bits = ~bits
    else:
        bits = bits | 0x80000000u
    return (<uint64_t> (~bits) << 32) | <uint64_t> position


cdef void _sort_keys(uint64_t* keys, uint64_t* tmp, intp_t n) noexcept nogil:
    """Sort 64-bit keys ascending: qsort for small arrays, else LSD radix sort."""
    cdef intp_t counts[2048]
    cdef intp_t i, total, c
    cdef int shift
    cdef uint64_t* src = keys
    cdef uint64_t* dst = tmp
    cdef uint64_t* swap
    if n < 4096:
        qsort(keys, n, sizeof(uint64_t), _cmp_keys)
        return
    for shift in range(0, 66, 11):  # six 11-bit digits
        memset(counts, 0, sizeof(counts))
        for i in range(n):
            counts[(src[i] >> shift) & 0x7FF] += 1
        total = 0
        for i in range(2048):
            c = counts[i]
            counts[i] = total
            total += c
        for i in range(n):
            dst[counts[(src[i] >> shift) & 0x7FF]] = src[i]
            counts[(src[i] >> shift) & 0x7FF] += 1
        swap = src
        src = dst
        dst = swap
    # An even number of passes: the sorted data is back in ``keys``.


cdef void _similarities(const float* vals, const int32_t* cols, const intp_t* ptr,
                        intp_t n_items, const float* centroids, const float* c_sqnorm,
                        intp_t f, bint spherical, float* sims,
                        int n_threads) noexcept nogil:
    # centroids are feature-major: centroids[feature * f + child], so one pass over
    # an item's nonzeros updates all f similarities from one contiguous row.
    cdef intp_t i, c, p
    cdef float v
    cdef float* out
    cdef const float* row
    for i in prange(n_items, num_threads=n_threads, schedule="static"):
        out = sims + i * f
        for c in range(f):
            out[c] = 0
        for p in range(ptr[i], ptr[i + 1]):
            v = vals[p]
            row = centroids + cols[p] * f
            for c in range(f):
                out[c] += v * row[c]
        if not spherical:
            for c in range(f):
                out[c] = 2 * out[c] - c_sqnorm[c]


cdef void _gap_similarities(const float* vals, const int32_t* cols, const intp_t* ptr,
                            intp_t n_items, const float* centroids, const float* c_sqnorm,
                            intp_t n_local, bint spherical, float* gap, float* sims,
                            int n_threads) noexcept nogil:
    # Two children: only sim_0 - sim_1 matters, which is x . (c_0 - c_1) (minus
    # |c_0|^2 - |c_1|^2, doubled, for Euclidean): one product per nonzero.
    cdef intp_t i, p
    cdef float s, offset = 0
    for p in range(n_local):
        gap[p] = centroids[2 * p] - centroids[2 * p + 1]
    if not spherical:
        offset = c_sqnorm[0] - c_sqnorm[1]
    for i in prange(n_items, num_threads=n_threads, schedule="static"):
        s = 0
        for p in range(ptr[i], ptr[i + 1]):
            s = s + vals[p] * gap[cols[p]]
        sims[i] = s if spherical else 2 * s - offset


cdef void _assign_two(const float* gaps, intp_t n_items, intp_t capacity_0,
                      uint64_t* keys, uint64_t* tmp, int32_t* assign) noexcept nogil:
    # The optimal balanced split into two children: a cut of the items ordered
    # by how much more they prefer child 0 (ties: item order).
    cdef intp_t i, j
    for i in range(n_items):
        keys[i] = _descending_key(gaps[i], i)
    _sort_keys(keys, tmp, n_items)
    for j in range(n_items):
        assign[keys[j] & 0xFFFFFFFFu] = 0 if j < capacity_0 else 1


cdef void _assign_balanced(const float* sims, intp_t n_items, intp_t f,
                           const intp_t* capacity, intp_t* room, uint64_t* keys,
                           uint64_t* tmp, int32_t* cand_child,
                           int32_t* assign) noexcept nogil:
    cdef intp_t i, c, j, m, n_cands = 0, best, pos
    cdef float best_sim = 0
    m = f if f < N_CANDIDATES else N_CANDIDATES
    for c in range(f):
        room[c] = capacity[c]
    for i in range(n_items):
        assign[i] = -1
        # This item's m best children (simple selection; f is small).
        for j in range(m):
            best = -1
            for c in range(f):
                if best >= 0 and sims[i * f + c] <= best_sim:
                    continue
                if _already_candidate(cand_child + n_cands - j, j, c):
                    continue
                best = c
                best_sim = sims[i * f + c]
            cand_child[n_cands] = <int32_t> best
            keys[n_cands] = _descending_key(best_sim, n_cands)
            n_cands += 1
    _sort_keys(keys, tmp, n_cands)
    for j in range(n_cands):
        pos = <intp_t> (keys[j] & 0xFFFFFFFFu)
        i = pos // m
        c = cand_child[pos]
        if assign[i] < 0 and room[c] > 0:
            assign[i] = <int32_t> c
            room[c] -= 1
    for i in range(n_items):
        if assign[i] >= 0:
            continue
        best = -1
        for c in range(f):
            if room[c] > 0 and (best < 0 or sims[i * f + c] > best_sim):
                best = c
                best_sim = sims[i * f + c]
        assign[i] = <int32_t> best
        room[best] -= 1


cdef inline bint _already_candidate(const int32_t* first, intp_t count,
                                    intp_t child) noexcept nogil:
    cdef intp_t j
    for j in range(count):
        if first[j] == child:
            return True
    return False


cdef void _update_centroids(const float* vals, const int32_t* cols, const intp_t* ptr,
                            intp_t n_items, const int32_t* assign, intp_t f,
                            intp_t n_local, bint spherical, const intp_t* capacity,
                            float* centroids, float* c_sqnorm,
                            int n_threads) noexcept nogil:
    # Feature-major layout: centroids[feature * f + child]. Threads split the
    # children; each child sums its items in item order, so the result does not
    # depend on the number of threads.
    cdef intp_t i, c, p
    cdef double norm, scale
    memset(centroids, 0, f * n_local * sizeof(float))
    for c in prange(f, num_threads=n_threads, schedule="static"):
        for i in range(n_items):
            if assign[i] == c:
                for p in range(ptr[i], ptr[i + 1]):
                    centroids[cols[p] * f + c] += vals[p]
        norm = 0
        for p in range(n_local):
            norm = norm + <double> centroids[p * f + c] * centroids[p * f + c]
        if spherical:
            c_sqnorm[c] = 1
            scale = 1.0 / sqrt(norm) if norm > 0 else 0.0
        else:
            c_sqnorm[c] = <float> (norm / (<double> capacity[c] * capacity[c]))
            scale = 1.0 / capacity[c]
        for p in range(n_local):
            centroids[p * f + c] = <float> (centroids[p * f + c] * scale)


cdef int _split_node(const float* data, const int32_t* indices,
                     const intp_t* indptr, const intp_t* items, intp_t n_items,
                     intp_t f, int max_iter, double tol, bint spherical, uint64_t seed,
                     int32_t* feature_map, int32_t* assign, int n_threads) noexcept nogil:
    """Cluster ``items`` into ``f`` balanced children; write ``assign``.

    Returns 0, or -1 when memory runs out. ``feature_map`` is all -1 on entry and
    on exit (per-thread scratch of length n_features).
    """
    cdef intp_t i, c, p, q, nnz = 0, n_local = 0, it, changed
    cdef uint64_t state = seed
    cdef intp_t* ptr = NULL
    cdef int32_t* cols = NULL
    cdef float* vals = NULL
    cdef float* centroids = NULL
    cdef float* c_sqnorm = NULL
    cdef float* sims = NULL
    cdef float* gap = NULL
    cdef intp_t* capacity = NULL
    cdef intp_t* room = NULL
    cdef intp_t* pick = NULL
    cdef uint64_t* keys = NULL
    cdef uint64_t* key_tmp = NULL
    cdef int32_t* cand_child = NULL
    cdef int32_t* previous = NULL
    cdef int status = 0
    cdef intp_t max_changed = <intp_t> (tol * n_items)

    for i in range(n_items):
        nnz += indptr[items[i] + 1] - indptr[items[i]]
    ptr = <intp_t*> malloc((n_items + 1) * sizeof(intp_t))
    cols = <int32_t*> malloc((nnz + 1) * sizeof(int32_t))
    vals = <float*> malloc((nnz + 1) * sizeof(float))
    sims = <float*> malloc(n_items * f * sizeof(float))
    capacity = <intp_t*> malloc(f * sizeof(intp_t))
    room = <intp_t*> malloc(f * sizeof(intp_t))
    pick = <intp_t*> malloc(n_items * sizeof(intp_t))
    keys = <uint64_t*> malloc(n_items * N_CANDIDATES * sizeof(uint64_t))
    key_tmp = <uint64_t*> malloc(n_items * N_CANDIDATES * sizeof(uint64_t))
    cand_child = <int32_t*> malloc(n_items * N_CANDIDATES * sizeof(int32_t))
    previous = <int32_t*> malloc(n_items * sizeof(int32_t))
    c_sqnorm = <float*> malloc(f * sizeof(float))
    if (ptr == NULL or cols == NULL or vals == NULL or sims == NULL or capacity == NULL
            or room == NULL or pick == NULL or keys == NULL or key_tmp == NULL
            or cand_child == NULL or previous == NULL
            or c_sqnorm == NULL):
        status = -1
        n_local = 0
    else:
        # The node's items as a local CSR over the features they use.
        ptr[0] = 0
        q = 0
        for i in range(n_items):
            for p in range(indptr[items[i]], indptr[items[i] + 1]):
                if feature_map[indices[p]] < 0:
                    feature_map[indices[p]] = <int32_t> n_local
                    n_local += 1
                cols[q] = feature_map[indices[p]]
                vals[q] = data[p]
                q += 1
            ptr[i + 1] = q
        # Reset the map: only the touched entries.
        for i in range(n_items):
            for p in range(indptr[items[i]], indptr[items[i] + 1]):
                feature_map[indices[p]] = -1
        centroids = <float*> calloc(f * n_local + 1, sizeof(float))
        gap = <float*> malloc((n_local + 1) * sizeof(float)) if f == 2 else NULL
        if centroids == NULL or (f == 2 and gap == NULL):
            status = -1
    if status == 0:
        for c in range(f):
            capacity[c] = n_items // f + (1 if c < n_items % f else 0)
        # Initial centroids: f distinct random items (partial Fisher-Yates).
        for i in range(n_items):
            pick[i] = i
        for c in range(f):
            q = c + <intp_t> (_splitmix64(&state) % <uint64_t> (n_items - c))
            pick[c], pick[q] = pick[q], pick[c]
            for p in range(ptr[pick[c]], ptr[pick[c] + 1]):
                centroids[cols[p] * f + c] = vals[p]
            c_sqnorm[c] = 0
            for p in range(ptr[pick[c]], ptr[pick[c] + 1]):
                c_sqnorm[c] += vals[p] * vals[p]
        for it in range(max_iter):
            if f == 2:
                _gap_similarities(vals, cols, ptr, n_items, centroids, c_sqnorm,
                                  n_local, spherical, gap, sims, n_threads)
                _assign_two(sims, n_items, capacity[0], keys, key_tmp, assign)
            else:
                _similarities(vals, cols, ptr, n_items, centroids, c_sqnorm, f,
                              spherical, sims, n_threads)
                _assign_balanced(sims, n_items, f, capacity, room, keys, key_tmp,
                                 cand_child, assign)
            changed = 0
            for i in range(n_items):
                if it == 0 or assign[i] != previous[i]:
                    changed += 1
                previous[i] = assign[i]
            if it > 0 and changed <= max_changed:
                break
            _update_centroids(vals, cols, ptr, n_items, assign, f, n_local, spherical,
                              capacity, centroids, c_sqnorm, n_threads)
        if max_iter <= 0:
            for i in range(n_items):
                assign[i] = <int32_t> (i * f // n_items)
    free(ptr); free(cols); free(vals); free(sims); free(capacity); free(room)
    free(pick); free(keys); free(key_tmp); free(cand_child); free(previous); free(c_sqnorm); free(centroids); free(gap)
    return status


def _split_level(const float[::1] data,           # IN  Z values (CSR, rows = labels)
                 const int32_t[::1] indices,      # IN  Z column indices
                 const intp_t[::1] indptr,        # IN  Z row pointers
                 intp_t n_features,               # IN  columns of Z
                 const intp_t[::1] order,         # IN  labels; node k owns order[node_ptr[k]:node_ptr[k+1]]
                 const intp_t[::1] node_ptr,      # IN  (n_nodes + 1,)
                 const intp_t[::1] n_children,    # IN  (n_nodes,) fan-out, 1 <= f <= size
                 intp_t[::1] new_order,           # OUT labels regrouped child by child
                 int max_iter, double tol, bint spherical, uint64_t seed,
                 int n_threads, intp_t node_offset=0):
    """Split every node of a level; return the sizes of all children, in order.

    Node ``k`` draws the random stream of node ``node_offset + k`` of the level, so
    that a level split in pieces (distributed units) gives the same tree."""
    cdef intp_t n_nodes = node_ptr.shape[0] - 1
    cdef intp_t node, i, c, start, size, f, pos, size_tmp, feat
    cdef int inner_threads, outer_threads
    cdef intp_t failed = 0
    cdef const float* data_p = &data[0] if data.shape[0] > 0 else NULL
    cdef const int32_t* indices_p = &indices[0] if indices.shape[0] > 0 else NULL
    cdef int32_t* feature_map = NULL
    cdef int32_t* assign = NULL
    cdef intp_t* fill = NULL
    cdef intp_t[::1] child_ptr = np.zeros(np.sum(n_children) + 1, dtype=np.intp)
    cdef intp_t[::1] first_child = np.zeros(n_nodes + 1, dtype=np.intp)
    for node in range(n_nodes):
        first_child[node + 1] = first_child[node] + n_children[node]
    if n_nodes == 0:
        return np.asarray(child_ptr)
    if n_nodes >= n_threads:
        outer_threads, inner_threads = n_threads, 1
    else:
        outer_threads, inner_threads = 1, n_threads
    with nogil, parallel(num_threads=outer_threads):
        feature_map = <int32_t*> malloc((n_features + 1) * sizeof(int32_t))
        assign = <int32_t*> malloc((order.shape[0] + 1) * sizeof(int32_t))
        fill = <intp_t*> malloc((order.shape[0] + 1) * sizeof(intp_t))
        if feature_map != NULL:
            for feat in range(n_features):
                feature_map[feat] = -1
        for node in prange(n_nodes, schedule="dynamic"):
            if feature_map == NULL or assign == NULL or fill == NULL:
                failed += 1
                continue
            start = node_ptr[node]
            size = node_ptr[node + 1] - start
            f = n_children[node]
            if f <= 1:
                for i in range(size):
                    assign[i] = 0
            elif _split_node(data_p, indices_p, &indptr[0], &order[start], size, f,
                             max_iter, tol, spherical,
                             _node_seed(seed, node + node_offset), feature_map,
                             assign, inner_threads) != 0:
                failed += 1
                continue
            # Children's sizes and the regrouped order (stable within a child).
            for c in range(f):
                fill[c] = 0
            for i in range(size):
                fill[assign[i]] += 1
            pos = start
            for c in range(f):
                child_ptr[first_child[node] + c + 1] = fill[c]
                size_tmp = fill[c]
                fill[c] = pos
                pos = pos + size_tmp
            for i in range(size):
                new_order[fill[assign[i]]] = order[start + i]
                fill[assign[i]] += 1
        free(feature_map)
        free(assign)
        free(fill)
    if failed > 0:
        raise MemoryError("balanced k-means ran out of memory")
    return np.cumsum(child_ptr)
