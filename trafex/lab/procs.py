"""The lab's processes: started inside a namespace, recorded, ended by PID only.

A PID alone could be reused after a crash; a record also keeps the process's start
time (``/proc/PID/stat``, field 22), and :func:`stop` ends a PID only while it still
belongs to the process that was recorded. Nothing here ever signals by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trafex.lab.netns import exec_prefix


@dataclass(frozen=True)
class Proc:
    name: str  # e.g. "bgpd", "trafexd", "sensor"
    node: str
    pid: int
    start: int  # clock ticks since boot: the identity of the process behind the PID
    log: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Proc:
        return cls(**{k: data[k] for k in ("name", "node", "pid", "start", "log")})


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None  # a zombie has ended
    return int(fields[19])


def spawn(
    name: str,
    node: str,
    namespace: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Proc:
    """Start ``argv`` inside ``namespace`` in a session of its own, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*exec_prefix(namespace), *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C must not kill the lab
            env={**os.environ, **(env or {})},
        )
    started = start_time(process.pid)
    return Proc(name, node, process.pid, started or 0, str(log))


def alive(proc: Proc) -> bool:
    return start_time(proc.pid) == proc.start


def stop(proc: Proc, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True when it is gone (or was)."""
    if not alive(proc):
        _reap(proc.pid)
        return True
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(proc.pid)
        if not alive(proc):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(proc.pid, signal.SIGKILL)
    for _ in range(40):
        _reap(proc.pid)
        if not alive(proc):
            return True
        time.sleep(0.05)
    return False


def kill_pid(pid: int) -> None:
    """End a process found inside one of the lab's namespaces (so started by the lab)."""
    started = start_time(pid)
    if started is None:
        return
    stop(Proc("?", "?", pid, started, ""), timeout=2.0)


def _reap(pid: int) -> None:
    """Collect our own child's exit status, so that it does not linger as a zombie."""
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
