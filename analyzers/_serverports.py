"""Which side of a new connection is the server: Zeek's ``likely_server_ports`` and its flip rule.

Zeek builds ``likely_server_ports`` from the ports its protocol analyzers register (each
``base/protocols/*/main.zeek`` and the tunnel framework add theirs). The sets below are those of a
stock Zeek for the services it analyses; a port in them marks the endpoint that listens there.

The flip rule (Zeek's ``WantConnection`` per transport, applied in ``IPBasedAnalyzer::NewConn``)
decides once, on a connection's first packet, whether its receiver is the originator:

* TCP, when the first packet is not a pure SYN (a partial connection, or a SYN-ACK): flip if the
  source port is a likely server port and the destination port is not; if both are, flip only a
  packet without SYN going from the lower port to the higher one. A pure SYN never flips.
* UDP: flip if the source port is a likely server port and the destination port is not.
* Never towards the IPv4 limited broadcast address (255.255.255.255).

A flipped connection's history starts with ``^``.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from analyzers._tcpstate import ACK, SYN

B = npt.NDArray[np.bool_]
U64 = npt.NDArray[np.uint64]

#: TCP ports of Zeek's analyzers (HTTP, SSL, SSH, FTP, SMTP, POP3, IMAP, IRC, DNS, SMB, DCE-RPC,
#: Kerberos, LDAP, MySQL, PostgreSQL, Redis, RDP, Modbus, DNP3, SOCKS, XMPP, finger, ...).
LIKELY_SERVER_TCP: frozenset[int] = frozenset(
    (
        *(21, 22, 23, 25, 53, 79, 80, 81, 88, 110, 111, 113, 135, 139, 143, 389, 443, 445),
        *(465, 502, 513, 563, 585, 587, 614, 631, 636, 750, 989, 990, 992, 993, 995, 1080),
        *(1434, 2811, 3128, 3268, 3306, 3389, 5223, 5222, 5269, 5432, 6379, 6666, 6667),
        *(6668, 6669, 7000, 8000, 8080, 8443, 8888, 20000),
    )
)
#: UDP ports of Zeek's analyzers (DNS, mDNS, LLMNR, NetBIOS-NS, DHCP's server port 67 but not
#: the client's 68, NTP, SNMP, syslog, SIP, RADIUS, Kerberos, QUIC/DTLS, DNP3) and its tunnel
#: framework (Teredo, AYIYA, GTPv1, VXLAN, Geneve).
LIKELY_SERVER_UDP: frozenset[int] = frozenset(
    (
        *(53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 750, 1812, 2123, 2152, 3544),
        *(4789, 5060, 5072, 5353, 5355, 6081, 20000),
    )
)
#: UDP responder ports on which Zeek runs its DNS analyzer (and so its DNS session timer).
DNS_UDP_PORTS: frozenset[int] = frozenset((53, 137, 5353, 5355))

_V4_BROADCAST = np.uint64(0xFFFF_FFFF_FFFF)  # ::ffff:255.255.255.255, the low word


@cache
def _table(ports: frozenset[int]) -> B:
    out = np.zeros(65536, np.bool_)
    out[sorted(ports)] = True
    return out


def dns_udp_port_table() -> B:
    """Indexed by port: True where Zeek's DNS analyzer (and its session timer) runs on UDP."""
    return _table(DNS_UDP_PORTS)


def flip_roles(  # noqa: PLR0917 - one column per packet field, vectorised over new flows
    proto: npt.NDArray[np.uint8],
    sport: U64,
    dport: U64,
    flags: npt.NDArray[np.uint16],
    dst_hi: U64,
    dst_lo: U64,
) -> B:
    """Per new flow, from its first packet: whether the packet's receiver is the originator."""
    tcp = proto == 6
    udp = proto == 17
    ported = tcp | udp
    sp = np.where(ported, sport, 0).astype(np.intp)
    dp = np.where(ported, dport, 0).astype(np.intp)
    t_tab, u_tab = _table(LIKELY_SERVER_TCP), _table(LIKELY_SERVER_UDP)
    src_likely = np.where(tcp, t_tab[sp], u_tab[sp]) & ported
    dst_likely = np.where(tcp, t_tab[dp], u_tab[dp])
    syn = (flags & SYN) != 0
    partial = ~syn | ((flags & ACK) != 0)
    tcp_flip = partial & (~dst_likely | (~syn & (sp < dp)))
    flip = src_likely & np.where(tcp, tcp_flip, ~dst_likely)
    broadcast = (dst_hi == 0) & (dst_lo == _V4_BROADCAST)
    out: B = flip & ~broadcast
    return out
