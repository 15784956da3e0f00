"""A benchmark's working folder: removed when the run goes well, kept (and named) when
it fails, so the daemons' logs are there to read. bench/ imports it from here, beside
the harness it runs (``peered``, ``gobgpd``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Scratch:
    path: Path
    keep: bool = False  # set by the benchmark when its result is a failure


@contextmanager
def scratch(prefix: str) -> Iterator[Scratch]:
    """A new folder under the system's temp dir, named ``prefix…``."""
    folder = Scratch(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        yield folder
    except BaseException:
        print(f"(logs kept in {folder.path})")
        raise
    if folder.keep:
        print(f"(logs kept in {folder.path})")
    else:
        shutil.rmtree(folder.path, ignore_errors=True)
