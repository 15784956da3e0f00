"""trafex enforce against the real kernel: compiled FlowSpec rules in nftables.

Two network namespaces joined by a veth pair (``tfxe<pid>s`` sends, ``tfxe<pid>r``
receives; both deleted at the end, even on failure). The sender writes whole Ethernet
frames (built with scapy) to a packet socket opened inside its namespace, so every
header field, fragments included, is what the test says. The receiver holds the
compiled table and an observer table hooked later in prerouting (priority 0), whose
named counters see what survived the enforcer and with which DSCP and mark.

Root only; skipped (with the reason) when not root or when nft, ip or scapy is missing.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from trafex.enforce import nftables
from trafex.enforce.compile import CompileOptions, compile_rules, counter_name
from trafex.model.flowspec import Family, FlowActions, FlowRule, RouteTarget
from trafex.model.grammar import parse_rule
from trafex.model.nlri import decode_nlri

CLONE_NEWNET = 0x40000000
TABLE = "trafex_it"
RT = RouteTarget.parse("6:302")
MARK = 0x302


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("nft", "ip"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return f"{tool} is not installed"
    try:
        import scapy.layers.inet  # noqa: F401
    except ImportError:
        return "scapy is not installed"
    return None


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Lab:
    sender: str
    receiver: str
    receiver_if: str
    sock: socket.socket
    src_mac: str
    dst_mac: str

    def send(self, *packets: Any) -> None:
        """Send scapy L3 packets as frames from the sender to the receiver's MAC."""
        from scapy.layers.l2 import Ether

        for packet in packets:
            frame = Ether(src=self.src_mac, dst=self.dst_mac) / packet
            self.sock.send(bytes(frame))

    def nft_text(self, text: str) -> None:
        """Load an nft ruleset written as text (the observer table only)."""
        subprocess.run(
            ["ip", "netns", "exec", self.receiver, "nft", "-f", "-"],
            input=text,
            text=True,
            check=True,
            timeout=20,
        )


def _packet_socket(namespace: str, ifname: str) -> socket.socket:
    """An AF_PACKET socket on ``ifname`` inside ``namespace``: opened by a thread that
    joins the namespace (setns is per thread), usable from any thread afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: dict[str, Any] = {}

    def join_and_open() -> None:
        fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                result["error"] = OSError(ctypes.get_errno(), "setns")
                return
        finally:
            os.close(fd)
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind((ifname, 0))
        result["sock"] = sock

    thread = threading.Thread(target=join_and_open)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["sock"]
    return sock


def _mac(namespace: str, ifname: str) -> str:
    (link,) = json.loads(_ip("-n", namespace, "-j", "link", "show", "dev", ifname))
    return str(link["address"])


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    base = f"tfxe{os.getpid() % 100000}"
    sender, receiver = base + "s", base + "r"
    made: list[str] = []
    sock: socket.socket | None = None
    try:
        for namespace in (sender, receiver):
            _ip("netns", "add", namespace)
            made.append(namespace)
        _ip(
            "link",
            "add",
            sender,
            "netns",
            sender,
            "type",
            "veth",
            "peer",
            "name",
            receiver,
            "netns",
            receiver,
        )
        for namespace, address in ((sender, "1"), (receiver, "2")):
            _ip("-n", namespace, "addr", "add", f"192.0.2.{address}/24", "dev", namespace)
            _ip(
                "-n",
                namespace,
                "-6",
                "addr",
                "add",
                f"2001:db8::{address}/64",
                "dev",
                namespace,
                "nodad",
            )
            _ip("-n", namespace, "link", "set", namespace, "up")
        sock = _packet_socket(sender, sender)
        yield Lab(sender, receiver, receiver, sock, _mac(sender, sender), _mac(receiver, receiver))
    finally:
        if sock is not None:
            sock.close()
        for namespace in made:
            subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=20)


# ---------------------------------------------------------------------------------------
# (a) nft accepts everything the compiler writes

EVERY_COMPONENT = [
    "destination 10.0.0.0/8 source 192.0.2.0/24 protocol [ =tcp =udp ] discard",
    "destination 10.0.0.1/32 port [ =80 =443 >=8000&<=8080 ] rate-limit 12500.5",
    "destination 10.0.0.2/32 destination-port !=53 source-port <1024 mark 46 action sample",
    "destination 10.0.0.3/32 destination-port true redirect 6:302 action terminal",
    "ipv4 icmp-type [ =8 =0 ] icmp-code =0 discard",
    "ipv4 protocol =6 tcp-flags [ =S&!A F !=SA 0x100 =0x0102 ] discard",
    "ipv4 packet-length [ <64 >1400 ] dscp [ =10 =12 >=40&<=46 ] discard",
    "ipv4 fragment [ dont-fragment is-fragment first-fragment last-fragment ] discard",
    "ipv4 fragment [ !is-fragment =dont-fragment+first-fragment ] discard action sample-terminal",
    "ipv4 protocol false discard",
    "destination 2001:db8::/32 source 2001:db8:1::/48 next-header =udp discard",
    "destination 2001:db8::/64/8 source ::1234:0:0:0/80/64 discard",
    "destination ::26/128/64 port =443 redirect 6:302",
    "ipv6 icmp-type [ =echo-request =echo-reply ] icmp-code =0 rate-limit 1000",
    "ipv6 tcp-flags [ =S ] destination-port =22 mark 10 action terminal",
    "ipv6 packet-length >=1280 traffic-class =46 flow-label [ =1 >=100&<=200 ] discard",
    "ipv6 fragment [ is-fragment first-fragment last-fragment !is-fragment ] discard",
    "ipv6 fragment !first-fragment protocol true discard",
]
# Decoded from BGP: != kept as lt|gt, true/false with values, 2-byte values.
DECODED = [
    (Family.IPV4, "05865006910050"),  # destination-port !=80, source-port =80 in 2 bytes
    (Family.IPV4, "0b07078002"),  # dscp true:7 | false:2
    (Family.IPV6, "0a13007ed50400"),  # packet-length >=126&<=1024 in 2-byte values
    (Family.IPV6, "0d8600"),  # flow-label !=0
]


def _every_rule() -> list[FlowRule]:
    rules = [parse_rule(text) for text in EVERY_COMPONENT]
    for family, hexa in DECODED:
        rules.append(FlowRule(decode_nlri(family, bytes.fromhex(hexa)), FlowActions(rate=0.0)))
    return rules


def test_nft_accepts_every_component_operator_and_action(lab: Lab) -> None:
    """``nft -c`` (the kernel checks, nothing applied) accepts the whole table; applied,
    the table holds exactly the chains and counters the compiler named."""
    options = CompileOptions(table=TABLE, interfaces=(lab.receiver_if, "eth*"), marks={RT: MARK})
    compiled = compile_rules(_every_rule(), options)
    assert [r.refused for r in compiled.results if r.refused] == []
    nftables.check(compiled.document, lab.receiver)
    nftables.apply(compiled.document, lab.receiver)
    existing = nftables.read_existing(TABLE, lab.receiver)
    live = [r for r in compiled.results if r.branches]
    assert existing.chains == {"prerouting"} | {f"{p}_{r.counter}" for r in live for p in "ma"}
    assert existing.counters == {r.counter for r in compiled.results}
    assert existing.base_priority == -150
    nftables.delete_table(TABLE, lab.receiver)
    assert not nftables.read_existing(TABLE, lab.receiver).table_exists


# ---------------------------------------------------------------------------------------
# (b) real packets: verdicts, rewrites, counters

S4, S6 = "192.0.2.1", "2001:db8::1"
RULES = {
    "dport": "destination 192.0.2.2/32 destination-port =1001 discard",
    "port": "destination 192.0.2.2/32 port =1002 discard",
    "dscp_set": "destination 192.0.2.2/32 destination-port =1003 mark 46",
    "redirect": "destination 192.0.2.2/32 destination-port =1004 redirect 6:302",
    "rate": "destination 192.0.2.2/32 destination-port =1005 rate-limit 10000",
    "icmp": "destination 192.0.2.2/32 icmp-type =8 discard",
    "flags": "destination 192.0.2.2/32 destination-port =1007 tcp-flags =S&!A discard",
    "length": "destination 192.0.2.2/32 destination-port =1008 packet-length >=500 discard",
    "dscp": "destination 192.0.2.2/32 destination-port =1009 dscp =10 discard",
    "is_fragment": "destination 192.0.2.10/32 fragment is-fragment discard",
    "fragment_port": "destination 192.0.2.11/32 destination-port =1011 discard",
    "dont_fragment": "destination 192.0.2.15/32 fragment dont-fragment discard",
    "terminal": "destination 192.0.2.12/32 destination-port =1012 mark 8 action terminal",
    "stop": "destination 192.0.2.14/32 destination-port =1012 mark 8",
    "wide": "destination 192.0.2.0/24 destination-port =1012 discard",
    "v6_dport": "destination 2001:db8::2/128 destination-port =2001 discard",
    "v6_icmp": "destination 2001:db8::2/128 icmp-type =128 discard",
    "v6_length": "destination 2001:db8::22/128 packet-length =140 discard",
    "v6_fragment": "destination 2001:db8::23/128 fragment !is-fragment discard",
    "v6_dscp_set": "destination 2001:db8::24/128 mark 34",
    "v6_label": "destination 2001:db8::25/128 flow-label =12345 discard",
    "v6_offset": "destination ::26/128/64 discard",
    "v6_protocol": "destination 2001:db8::27/128 protocol =udp discard",
}
# Observer (priority 0, after the enforcer): what got through, and how.
OBSERVER = {
    "dscp_set": "udp dport 1003 ip dscp 46",
    "redirect": f"udp dport 1004 meta mark {MARK}",
    "rate": "udp dport 1005",
    "icmp": "icmp type 13",
    "flags": "tcp dport 1007",
    "length": "udp dport 1008",
    "dscp": "udp dport 1009",
    "is_fragment": "ip daddr 192.0.2.10",
    "fragment_port": "ip daddr 192.0.2.11",
    "dont_fragment": "ip daddr 192.0.2.15",
    "stop": "ip daddr 192.0.2.14 ip dscp 8",
    "dropped": "udp dport { 1001, 1002, 2001 }",
    "wide": "udp dport 1012 ip daddr { 192.0.2.12, 192.0.2.13 }",
    "v6_icmp": "icmpv6 type echo-reply",
    "v6_length": "ip6 daddr 2001:db8::22",
    "v6_fragment": "ip6 daddr 2001:db8::23",
    "v6_dscp_set": "ip6 daddr 2001:db8::24 ip6 dscp 34",
    "v6_label": "ip6 daddr 2001:db8::25",
    "v6_offset": "ip6 daddr 2001:db8::126",
    "v6_protocol": "ip6 daddr 2001:db8::27",
}
RATE_PACKETS, RATE_SIZE = 200, 1000


def _observer() -> str:
    counters = "".join(f"  counter o_{name} {{ }}\n" for name in OBSERVER)
    rules = "".join(f"    {match} counter name o_{name}\n" for name, match in OBSERVER.items())
    chain = "  chain pre {\n    type filter hook prerouting priority 0; policy accept;\n"
    return f"table inet obs {{\n{counters}{chain}{rules}  }}\n}}\n"


def _probes() -> dict[str, list[Any]]:
    """Packets per rule, each commented with what the rule must do to it."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import (
        ICMPv6EchoReply,
        ICMPv6EchoRequest,
        IPv6,
        IPv6ExtHdrDestOpt,
        IPv6ExtHdrFragment,
    )
    from scapy.packet import Raw

    def udp4(dport: int, *, dst: str = "192.0.2.2", size: int = 100, **ip: Any) -> Any:
        return IP(src=S4, dst=dst, **ip) / UDP(sport=40000, dport=dport) / Raw(b"x" * (size - 28))

    def udp6(dst: str, *, dport: int = 3000, size: int = 100, **ip: Any) -> Any:
        return IPv6(src=S6, dst=dst, **ip) / UDP(sport=40000, dport=dport) / Raw(b"x" * (size - 48))

    def v4(**ip: Any) -> Any:
        return IP(src=S4, dst="192.0.2.2", **ip)

    def v6(dst: str) -> Any:
        return IPv6(src=S6, dst=dst)

    def fragment6(dst: str, *, first: bool) -> Any:
        if first:
            return v6(dst) / IPv6ExtHdrFragment(id=7, m=1) / UDP(dport=3000) / Raw(b"z" * 64)
        return v6(dst) / IPv6ExtHdrFragment(id=7, offset=100, nh=17) / Raw(b"z" * 64)

    return {
        "dport": [udp4(1001)],  # dropped
        "port": [v4() / UDP(sport=1002, dport=7000)],  # by its source port: dropped
        "dscp_set": [udp4(1003)],  # passes with DSCP 46
        "redirect": [udp4(1004)],  # passes with the mark
        "rate": [udp4(1005, size=RATE_SIZE) for _ in range(RATE_PACKETS)],  # over: dropped
        "icmp": [v4() / ICMP(type=8), v4() / ICMP(type=13)],  # dropped, passes
        "flags": [v4() / TCP(dport=1007, flags="S"), v4() / TCP(dport=1007, flags="SA")],
        "length": [udp4(1008, size=600), udp4(1008, size=100)],  # dropped, passes
        "dscp": [udp4(1009, tos=10 << 2), udp4(1009)],  # dropped, passes
        "is_fragment": [
            udp4(1010, dst="192.0.2.10", flags="MF"),  # first fragment: passes
            IP(src=S4, dst="192.0.2.10", frag=100, proto=17) / Raw(b"y" * 64),  # dropped
        ],
        "fragment_port": [
            udp4(1011, dst="192.0.2.11", flags="MF"),  # port 1011 in it: dropped
            IP(src=S4, dst="192.0.2.11", frag=100, proto=17) / Raw(b"y" * 64),  # passes
        ],
        "dont_fragment": [udp4(1015, dst="192.0.2.15", flags="DF"), udp4(1015, dst="192.0.2.15")],
        "terminal": [udp4(1012, dst="192.0.2.12")],  # counted, then "wide" drops it
        "stop": [udp4(1012, dst="192.0.2.14")],  # counted, accepted with DSCP 8
        "wide": [udp4(1012, dst="192.0.2.13")],  # dropped
        "v6_dport": [udp6("2001:db8::2", dport=2001)],  # dropped
        "v6_icmp": [
            v6("2001:db8::2") / ICMPv6EchoRequest(),  # dropped
            v6("2001:db8::2") / ICMPv6EchoReply(),  # passes
        ],
        "v6_length": [udp6("2001:db8::22", size=140), udp6("2001:db8::22", size=141)],
        "v6_fragment": [
            udp6("2001:db8::23"),  # no fragment header: dropped
            fragment6("2001:db8::23", first=True),  # first fragment, not IsF: dropped
            fragment6("2001:db8::23", first=False),  # IsF: passes
        ],
        "v6_dscp_set": [udp6("2001:db8::24")],  # passes with DSCP 34
        "v6_label": [udp6("2001:db8::25", fl=12345), udp6("2001:db8::25", fl=1)],
        "v6_offset": [
            udp6("2001:db8::26"),  # interface identifier ::26: dropped
            udp6("2001:db8:5::26"),  # in another /64: dropped too
            udp6("2001:db8::126"),  # passes
        ],
        "v6_protocol": [
            v6("2001:db8::27") / IPv6ExtHdrDestOpt() / UDP(dport=3000),  # UDP after: dropped
            v6("2001:db8::27") / TCP(dport=3000),  # passes
        ],
    }


def _counts(table: str, lab: Lab) -> dict[str, int]:
    return {name: packets for name, (packets, _) in nftables.counters(table, lab.receiver).items()}


def _enforce(lab: Lab, rules: dict[str, str], priority: int = -150) -> dict[str, str]:
    """Compile and apply ``rules``; their counter names by rule name."""
    options = CompileOptions(
        table=TABLE, interfaces=(lab.receiver_if,), priority=priority, marks={RT: MARK}
    )
    parsed = {name: parse_rule(text) for name, text in rules.items()}
    existing = nftables.read_existing(TABLE, lab.receiver)
    compiled = compile_rules(parsed.values(), options, existing)
    assert [r.refused for r in compiled.results if r.refused] == []
    nftables.apply(compiled.document, lab.receiver)
    return {name: counter_name(rule.key) for name, rule in parsed.items()}


def test_verdicts_rewrites_and_counters_on_real_packets(lab: Lab) -> None:
    """Each probe is dropped, passed, re-marked or rate-limited as its rule says, in
    both families; each rule's counter counts the packets it matched; T set lets the
    next rule act, T unset stops evaluation."""
    names = _enforce(lab, RULES)
    lab.nft_text(_observer())
    for packets in _probes().values():
        lab.send(*packets)
    rules = _counts(TABLE, lab)
    seen = {name.removeprefix("o_"): n for name, n in _counts("obs", lab).items()}
    assert {name: rules[counter] for name, counter in names.items()} == {
        name: 1 for name in RULES
    } | {"rate": RATE_PACKETS, "wide": 2, "v6_fragment": 2, "v6_offset": 2}
    passed = seen.pop("rate")
    # 10000 bytes/s, a bucket of one second: about 10 packets of 1000 bytes get through
    # (1 if the rate were read as bits, all 200 if as packets).
    assert 5 <= passed <= 20, passed
    nothing = ("dropped", "wide")  # every packet to those was dropped
    assert seen == {name: int(name not in nothing) for name in OBSERVER if name != "rate"}


# ---------------------------------------------------------------------------------------
# (c) a rebuild keeps the counters of the rules that stay


def test_rebuild_keeps_counters_of_the_rules_that_stay(lab: Lab) -> None:
    """Removing one rule deletes its chains and counter; the others keep counting from
    where they were."""
    rules = {name: RULES[name] for name in ("dport", "port", "v6_dport")}
    names = _enforce(lab, rules)
    probes = _probes()
    for name in rules:
        lab.send(*probes[name])
    before = _counts(TABLE, lab)
    assert {name: before[c] for name, c in names.items()} == {"dport": 1, "port": 1, "v6_dport": 1}
    del rules["dport"]
    _enforce(lab, rules)
    assert _counts(TABLE, lab) == {names["port"]: 1, names["v6_dport"]: 1}
    existing = nftables.read_existing(TABLE, lab.receiver)
    assert existing.chains == {"prerouting"} | {
        f"{p}_{names[n]}" for n in ("port", "v6_dport") for p in "ma"
    }
    lab.send(*probes["port"])
    assert _counts(TABLE, lab)[names["port"]] == 2
    _enforce(lab, rules, priority=-300)  # the base chain is replaced, the counters stay
    assert nftables.read_existing(TABLE, lab.receiver).base_priority == -300
    assert _counts(TABLE, lab) == {names["port"]: 2, names["v6_dport"]: 1}
    # The kernel keeps a counter's values when it is added again (the compiler does not
    # rely on it: it only adds counters that are missing).
    again = {"add": {"counter": {"family": "inet", "table": TABLE, "name": names["port"]}}}
    nftables.apply({"nftables": [again]}, lab.receiver)
    assert _counts(TABLE, lab)[names["port"]] == 2
