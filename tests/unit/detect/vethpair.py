"""A veth pair with one end in a fresh network namespace, and a frame sender there.

Names carry a unique prefix (``tfxd<pid><n>``); ``close()`` removes everything
even after a failure, and only the processes started here are ended, by PID.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

_COUNTER = itertools.count()

SENDER = r"""
import socket, struct, sys, time
iface, path, rate, repeat = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
count = int(sys.argv[5]) or None
data = open(path, "rb").read()
frames, off = [], 24
while off + 16 <= len(data) and (count is None or len(frames) < count):
    caplen = struct.unpack_from("<I", data, off + 8)[0]
    frames.append(data[off + 16 : off + 16 + caplen])
    off += 16 + caplen
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 24)
start, sent, batch = time.perf_counter(), 0, 256
for _ in range(repeat):
    for frame in frames:
        while True:
            try:
                s.send(frame)
                break
            except BlockingIOError:
                time.sleep(0.0001)
            except OSError:
                time.sleep(0.0001)
        sent += 1
        if rate and sent % batch == 0:
            ahead = sent / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
print(sent, time.perf_counter() - start, flush=True)
"""


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


class VethPair:
    """``outer`` stays in this namespace (the sensor's side); ``inner`` is in ``netns``."""

    def __init__(self) -> None:
        n = next(_COUNTER)
        tag = f"{os.getpid() % 100000}{n}"
        self.netns = f"tfxd{tag}"
        self.outer = f"tfxo{tag}"[:15]
        self.inner = f"tfxi{tag}"[:15]
        self._procs: list[subprocess.Popen[str]] = []
        try:
            run("ip", "netns", "add", self.netns)
            run("ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            run("ip", "link", "set", self.inner, "netns", self.netns)
            run("ip", "link", "set", self.outer, "up")
            run("ip", "-n", self.netns, "link", "set", self.inner, "up")
            run("ip", "-n", self.netns, "link", "set", "lo", "up")
            for dev, ns in ((self.outer, None), (self.inner, self.netns)):
                prefix = ["ip", "netns", "exec", ns] if ns else []
                run(*prefix, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
        except BaseException:
            self.close()
            raise

    def send_pcap(
        self, pcap: Path, rate: float = 0.0, repeat: int = 1, count: int | None = None
    ) -> subprocess.Popen[str]:
        """Start sending the frames of a (little-endian, microsecond) pcap from ``inner``
        (its first ``count``), ``repeat`` times, at ``rate`` frames/s (0: at once). The
        process prints the frames sent and the seconds it took."""
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                sys.executable,
                "-c",
                SENDER,
                self.inner,
                str(pcap),
                str(rate),
                str(repeat),
                str(count or 0),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()  # only processes started here, by PID
                proc.wait(timeout=10)
        subprocess.run(
            ["ip", "link", "del", self.outer], check=False, capture_output=True, timeout=30
        )
        subprocess.run(
            ["ip", "netns", "del", self.netns], check=False, capture_output=True, timeout=30
        )

    def __enter__(self) -> VethPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
