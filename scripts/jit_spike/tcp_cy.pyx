# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""The TCP event path in Cython: the spike's counterpart of analyzers/_tcpkernel.py."""

from libc.stdint cimport int64_t, uint8_t, uint32_t

DEF INACTIVE = 0
DEF SYN_SENT = 1
DEF SYN_ACK_SENT = 2
DEF PARTIAL = 3
DEF ESTABLISHED = 4
DEF CLOSED = 5
DEF RESET = 6


cdef inline bint _scale_point(int64_t count) noexcept nogil:
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


cdef inline Py_ssize_t _letter(uint8_t[:, ::1] hist, Py_ssize_t s, int ep, int code,
                               int64_t[:, ::1] spill, Py_ssize_t ns) noexcept nogil:
    cdef Py_ssize_t i
    if ep == 1:
        code += 32
    for i in range(hist.shape[1]):
        if hist[s, i] == 0:
            hist[s, i] = code
            return ns
    spill[ns, 0] = s
    spill[ns, 1] = code
    return ns + 1


cdef inline void _set(uint8_t[:, ::1] state, uint8_t[:, ::1] prev, Py_ssize_t s, int ep,
                      int new) noexcept nogil:
    if state[s, ep] != new:
        prev[s, ep] = state[s, ep]
        state[s, ep] = new


cdef void _update_state(uint8_t[:, ::1] state, uint8_t[:, ::1] prev, Py_ssize_t s, int ep,
                        int peer, bint syn, bint fin, bint rst, bint ack,
                        int64_t plen) noexcept nogil:
    cdef int st = state[s, ep]
    if st == INACTIVE:
        if syn:
            if ep == 0:
                _set(state, prev, s, ep, SYN_ACK_SENT if ack else SYN_SENT)
            else:
                if state[s, peer] == SYN_SENT:
                    _set(state, prev, s, peer, ESTABLISHED)
                _set(state, prev, s, ep, ESTABLISHED)
        if fin:
            _set(state, prev, s, ep, CLOSED)
        if rst:
            _set(state, prev, s, ep, RESET)
        if state[s, ep] == INACTIVE:
            if ep == 1 and plen == 0 and state[s, 0] == SYN_SENT:
                pass
            elif ack and state[s, peer] == ESTABLISHED:
                _set(state, prev, s, ep, ESTABLISHED)
            else:
                _set(state, prev, s, ep, PARTIAL)
    elif st == SYN_SENT or st == SYN_ACK_SENT:
        if fin:
            _set(state, prev, s, ep, CLOSED)
        if rst:
            _set(state, prev, s, ep, RESET)
    elif st == ESTABLISHED or st == PARTIAL:
        if syn and st == PARTIAL and state[s, peer] == INACTIVE and not ack:
            _set(state, prev, s, ep, SYN_SENT)
        if fin and not rst:
            _set(state, prev, s, ep, CLOSED)
            if state[s, peer] == RESET and prev[s, peer] == CLOSED:
                _set(state, prev, s, peer, CLOSED)
        if rst:
            _set(state, prev, s, ep, RESET)
    elif st == CLOSED and rst and state[s, peer] != CLOSED:
        _set(state, prev, s, ep, RESET)


def tcp_events(const int64_t[::1] ev_slot, const int64_t[::1] ev_dir, const int64_t[::1] ev_flags,
               const int64_t[::1] ev_seq, const int64_t[::1] ev_plen, const int64_t[::1] ev_win,
               const int64_t[::1] ev_ts, const uint8_t[::1] ev_t,
               uint8_t[:, ::1] state, uint8_t[:, ::1] prev, uint8_t[:, ::1] seen,
               uint32_t[:, ::1] syn_mark, uint32_t[:, ::1] fin_mark, uint32_t[:, ::1] rst_mark,
               uint32_t[:, ::1] zero_win, uint32_t[:, ::1] rst_count, int64_t[::1] syn_ts,
               int64_t[::1] synack_ts, int64_t[::1] ack_ts, uint8_t[:, ::1] did_close,
               int64_t[::1] close_ts, uint8_t[:, ::1] hist, int64_t[:, ::1] spill):
    cdef Py_ssize_t i, s, ns = 0
    cdef int ep, peer, bit, code, before
    cdef int64_t flags, seq, plen, ts, mark
    cdef bint syn, fin, rst, ack
    cdef uint32_t[:, ::1] marks
    for i in range(ev_slot.shape[0]):
        s = ev_slot[i]; ep = <int>ev_dir[i]; peer = 1 - ep
        flags = ev_flags[i]; seq = ev_seq[i]; plen = ev_plen[i]; ts = ev_ts[i]
        syn = (flags & 0x02) != 0; fin = (flags & 0x01) != 0
        rst = (flags & 0x04) != 0; ack = (flags & 0x10) != 0
        if syn or fin or rst:
            if <int>syn + <int>fin + <int>rst > 1:
                if fin and rst:
                    bit = 8; code = 73
                else:
                    bit = 64; code = 81
                if not seen[s, ep] & bit:
                    seen[s, ep] |= bit
                    ns = _letter(hist, s, ep, code, spill, ns)
            else:
                if syn:
                    bit = 1; code = 72 if ack else 83; mark = seq + 1; marks = syn_mark
                elif fin:
                    bit = 2; code = 70; mark = seq + plen + 1; marks = fin_mark
                else:
                    bit = 4; code = 82; mark = seq + 1; marks = rst_mark
                mark &= 0xFFFFFFFF
                if not seen[s, ep] & bit:
                    seen[s, ep] |= bit
                    ns = _letter(hist, s, ep, code, spill, ns)
                elif mark != marks[s, ep]:
                    ns = _letter(hist, s, ep, code, spill, ns)
                marks[s, ep] = <uint32_t>mark
        elif plen:
            if not seen[s, ep] & 16:
                seen[s, ep] |= 16
                ns = _letter(hist, s, ep, 68, spill, ns)
        elif ack and not seen[s, ep] & 32:
            seen[s, ep] |= 32
            ns = _letter(hist, s, ep, 65, spill, ns)
        if ev_win[i] == 0 and not rst and state[s, peer] != CLOSED and state[s, ep] != RESET:
            zero_win[s, ep] += 1
            if _scale_point(zero_win[s, ep]):
                ns = _letter(hist, s, ep, 87, spill, ns)
        if ev_t[i]:
            ns = _letter(hist, s, ep, 84, spill, ns)
        if rst:
            rst_count[s, ep] += 1
        if syn and not ack and ep == 0 and not syn_ts[s]:
            syn_ts[s] = ts + 1
        elif syn and ack and ep == 1 and not synack_ts[s]:
            synack_ts[s] = ts + 1
        elif ep == 0 and ack and not syn and not rst and synack_ts[s] and not ack_ts[s]:
            ack_ts[s] = ts + 1
        before = state[s, ep]
        _update_state(state, prev, s, ep, peer, syn, fin, rst, ack, plen)
        if (fin or rst) and before != CLOSED and before != RESET and not did_close[s, ep]:
            did_close[s, ep] = 1
            if state[s, ep] == RESET or did_close[s, peer] or state[s, peer] == INACTIVE:
                close_ts[s] = ts
    return ns
