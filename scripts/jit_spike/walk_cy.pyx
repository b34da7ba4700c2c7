# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""The pcap record walk in Cython: the spike's counterpart of capture/_recwalk.py."""

from libc.stdint cimport int64_t, uint8_t


cdef inline int64_t _u32(const uint8_t[::1] d, Py_ssize_t at, bint big) noexcept nogil:
    if big:
        return (<int64_t>d[at] << 24) | (<int64_t>d[at + 1] << 16) | (<int64_t>d[at + 2] << 8) | d[at + 3]
    return d[at] | (<int64_t>d[at + 1] << 8) | (<int64_t>d[at + 2] << 16) | (<int64_t>d[at + 3] << 24)


def walk_records(const uint8_t[::1] data, int64_t pos, int64_t hdrlen, bint big, int64_t ts_mult,
                 int64_t max_caplen, int64_t[::1] offsets, int64_t[::1] caplens,
                 int64_t[::1] wirelens, int64_t[::1] ts_ns):
    cdef int64_t end = data.shape[0], n = 0, limit = offsets.shape[0], cap, status = 0
    with nogil:
        while n < limit and pos < end:
            if end - pos < hdrlen:
                status = 1
                break
            cap = _u32(data, pos + 8, big)
            if cap > max_caplen:
                status = 3
                break
            if cap > end - pos - hdrlen:
                status = 2
                break
            offsets[n] = pos + hdrlen
            caplens[n] = cap
            wirelens[n] = _u32(data, pos + 12, big)
            ts_ns[n] = _u32(data, pos, big) * 1000000000 + _u32(data, pos + 4, big) * ts_mult
            n += 1
            pos += hdrlen + cap
    return n, pos, status
