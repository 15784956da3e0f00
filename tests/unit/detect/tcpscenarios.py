"""TCP conversations built with Scapy, each exercising one corner of the analysis."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

C4, S4 = "10.1.0.1", "10.2.0.2"
C6, S6 = "3001:1:a::10", "3001:4:b::10"


class Conv:
    """A client/server conversation whose packets get explicit, increasing times."""

    def __init__(
        self, v6: bool = False, sport: int = 40000, dport: int = 443, t0: float = 1_700_000_000.0
    ) -> None:
        self.v6 = v6
        self.sport = sport
        self.dport = dport
        self.t = t0
        self.cseq = 1000
        self.sseq = 5000
        self.pkts: list[Any] = []

    def _ip(self, from_client: bool) -> Any:
        if self.v6:
            return IPv6(src=C6, dst=S6) if from_client else IPv6(src=S6, dst=C6)
        return IP(src=C4, dst=S4) if from_client else IP(src=S4, dst=C4)

    def send(
        self,
        from_client: bool,
        flags: str,
        seq: int | None = None,
        ack: int | None = None,
        data: bytes = b"",
        window: int = 8192,
        dt: float = 0.05,
        options: list[Any] | None = None,
    ) -> Any:
        self.t += dt
        sp, dp = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        if seq is None:
            seq = self.cseq if from_client else self.sseq
        if ack is None:
            ack = self.sseq if from_client else self.cseq
        tcp = TCP(
            sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, window=window, options=options or []
        )
        pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / self._ip(from_client) / tcp
        if data:
            pkt = pkt / data
        pkt.time = self.t
        pkt._trafex_time_set = True
        self.pkts.append(pkt)
        return pkt

    def c(self, flags: str = "A", data: bytes = b"", advance: bool = True, **kw: Any) -> Any:
        pkt = self.send(True, flags, data=data, **kw)
        if advance and "seq" not in kw:
            self.cseq += len(data) + (1 if ("S" in flags or "F" in flags) else 0)
        return pkt

    def s(self, flags: str = "A", data: bytes = b"", advance: bool = True, **kw: Any) -> Any:
        pkt = self.send(False, flags, data=data, **kw)
        if advance and "seq" not in kw:
            self.sseq += len(data) + (1 if ("S" in flags or "F" in flags) else 0)
        return pkt

    def handshake(self) -> Conv:
        self.c("S", ack=0)
        self.s("SA", dt=0.02)
        self.c("A", dt=0.02)
        return self


def scenario_clean(v6: bool = False) -> list[Any]:
    """Handshake, data both ways, pure ACKs, window updates, FIN: no retransmission."""
    c = Conv(v6).handshake()
    c.c("PA", b"x" * 100)
    c.s("A")
    c.s("A", window=16384)  # window update
    c.s("PA", b"y" * 300)
    c.c("A")
    c.c("A")  # duplicate pure ACK
    c.c("FA")
    c.s("FA")
    c.c("A")
    return c.pkts


def scenario_rto(v6: bool = False, times: int = 3) -> list[Any]:
    """A data segment retransmitted after timeouts ``times`` times."""
    c = Conv(v6, sport=40001).handshake()
    seq = c.cseq
    c.c("PA", b"a" * 500)
    for _ in range(times):
        c.c("PA", b"a" * 500, seq=seq, dt=0.3)
    c.s("A")
    return c.pkts


def scenario_fast(v6: bool = False) -> list[Any]:
    """A lost segment, three duplicate ACKs, a fast retransmission within 20 ms."""
    c = Conv(v6, sport=40002).handshake()
    c.c("A", b"1" * 1000)
    lost = c.cseq
    c.c("A", b"2" * 1000)  # lost on the way
    for i in range(3):
        c.c("A", bytes([51 + i]) * 1000, dt=0.001)
    ack_at = lost
    for _ in range(3):
        c.s("A", ack=ack_at, dt=0.002)
    c.c("A", b"2" * 1000, seq=lost, dt=0.003)
    c.s("A")
    return c.pkts


def scenario_sack(v6: bool = False) -> list[Any]:
    """Duplicate ACKs with SACK blocks, then the hole is filled by a retransmission."""
    c = Conv(v6, sport=40003).handshake()
    c.c("A", b"a" * 1000)
    hole = c.cseq
    c.c("A", b"b" * 1000)
    c.c("A", b"c" * 1000)
    c.c("A", b"d" * 1000)
    for right in (hole + 2000, hole + 3000):
        c.s("A", ack=hole, options=[("SAck", (hole + 1000, right))], dt=0.001)
    c.c("A", b"b" * 1000, seq=hole, dt=0.2)
    c.s("A")
    return c.pkts


def scenario_out_of_order(v6: bool = False) -> list[Any]:
    """Two segments swapped within a millisecond: out-of-order, not a retransmission."""
    c = Conv(v6, sport=40004).handshake()
    first = c.cseq
    c.c("A", b"b" * 100, seq=first + 100, advance=False, dt=0.0005)
    c.c("A", b"a" * 100, seq=first, advance=False, dt=0.0002)
    c.cseq = first + 200
    c.s("A")
    return c.pkts


def scenario_keepalive(v6: bool = False) -> list[Any]:
    """Keep-alives (seq = next - 1, 0 or 1 byte) and their ACKs: no retransmission."""
    c = Conv(v6, sport=40005).handshake()
    c.c("PA", b"q" * 10)
    c.s("A")
    for _ in range(3):
        c.c("A", seq=c.cseq - 1, dt=1.0)
        c.s("A", dt=0.01)
    c.c("A", b"\0", seq=c.cseq - 1, dt=1.0)
    c.s("A", dt=0.01)
    return c.pkts


def scenario_window_probe(v6: bool = False) -> list[Any]:
    """The receiver closes its window; 1-byte zero-window probes are repeated."""
    c = Conv(v6, sport=40006).handshake()
    c.c("A", b"d" * 1000)
    c.s("A", window=0)
    for _ in range(3):
        c.c("A", b"p", seq=c.cseq, advance=False, dt=0.5)
        c.s("A", window=0, dt=0.01)
    c.s("A", window=8192, dt=0.1)  # window update
    return c.pkts


def scenario_syn_fin_retrans(v6: bool = False) -> list[Any]:
    """Repeated SYN, repeated SYN/ACK and repeated FIN: all retransmissions."""
    c = Conv(v6, sport=40007)
    isn = c.cseq
    c.c("S", ack=0)
    c.c("S", ack=0, seq=isn, dt=1.0)
    c.s("SA", dt=0.02)
    c.s("SA", seq=c.sseq - 1, dt=1.0)
    c.c("A")
    fin = c.cseq
    c.c("FA")
    c.c("FA", seq=fin, dt=0.4)
    c.c("FA", seq=fin, dt=0.8)
    c.s("A")
    return c.pkts


def scenario_duplicate_copy(v6: bool = False) -> list[Any]:
    """Every client segment captured twice (two taps): tshark flags the copies."""
    c = Conv(v6, sport=40008).handshake()
    out = list(c.pkts)
    for i in range(4):
        seq = c.cseq
        first = c.c("PA", bytes([65 + i]) * 200)
        copy = first.copy()
        copy.time = first.time + 0.00001
        copy._trafex_time_set = True
        out += [first, copy]
        del seq
        out.append(c.s("A"))
    return out


def scenario_spurious(v6: bool = False) -> list[Any]:
    """A segment resent after the peer acknowledged it: a spurious retransmission."""
    c = Conv(v6, sport=40009).handshake()
    seq = c.cseq
    c.c("PA", b"z" * 300)
    c.s("A")
    c.c("PA", b"z" * 300, seq=seq, dt=0.5)
    c.s("A")
    return c.pkts


def scenario_port_reuse(v6: bool = False) -> list[Any]:
    """SYN, RST, the same SYN again (a retransmission), a closed connection, then a new
    connection on the same ports with another ISN (counts start again)."""
    c = Conv(v6, sport=40010)
    isn = c.cseq
    c.c("S", ack=0)
    c.s("RA", ack=isn + 1, dt=0.01)
    c.c("S", ack=0, seq=isn, dt=1.0)
    c.s("SA", dt=0.01)
    c.c("A")
    c.c("PA", b"r" * 50)
    c.c("PA", b"r" * 50, seq=c.cseq - 50, advance=False, dt=0.5)
    c.c("FA", dt=0.1)
    c.s("FA", dt=0.01)
    c.c("A")
    c.cseq = isn + 100_000
    c.c("S", ack=0, dt=2.0)
    c.s("SA", dt=0.01)
    c.c("A")
    c.c("PA", b"n" * 20)
    c.c("PA", b"n" * 20, seq=c.cseq - 20, advance=False, dt=0.5)
    return c.pkts


def scenario_overlap(v6: bool = False) -> list[Any]:
    """Resent data overlapping new data, and data starting one byte before the next
    sequence number (tshark does not call the latter a retransmission)."""
    c = Conv(v6, sport=40011).handshake()
    s0 = c.cseq
    nxt = s0
    for back, size, flags in [
        (0, 100, "PA"),
        (50, 100, "PA"),
        (1, 100, "PA"),
        (1, 2, "PA"),
        (1, 30, "FA"),
        (3, 2, "PA"),
    ]:
        c.c(flags, b"o" * size, seq=nxt - back, advance=False, dt=0.3)
        nxt = max(nxt, nxt - back + size + (1 if "F" in flags else 0))
    return c.pkts


SCENARIOS = {
    "clean": scenario_clean,
    "rto": scenario_rto,
    "fast": scenario_fast,
    "sack": scenario_sack,
    "out_of_order": scenario_out_of_order,
    "keepalive": scenario_keepalive,
    "window_probe": scenario_window_probe,
    "syn_fin": scenario_syn_fin_retrans,
    "duplicate_copy": scenario_duplicate_copy,
    "spurious": scenario_spurious,
    "port_reuse": scenario_port_reuse,
    "overlap": scenario_overlap,
}
