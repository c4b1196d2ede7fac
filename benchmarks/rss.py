"""Resident memory of a server's whole process tree: one reading, or the peak over a span.

Standard library only (psutil is used when importable, for the same numbers), so that
the standalone workload scripts (:mod:`benchmarks.server_workloads`) can sample the
server they load while they load it: :class:`PeakSampler` reads the tree's summed RSS
every 50 ms in a thread and keeps the largest value. Linux (``/proc``) only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from types import TracebackType

#: How often :class:`PeakSampler` reads the tree's RSS.
SAMPLE_INTERVAL_S = 0.05
#: How often it re-walks the process tree (a walk reads every ``/proc/<pid>/stat``).
TREE_REFRESH_S = 0.5


def _children_map() -> dict[int, list[int]]:
    """Parent pid → child pids, from ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def vm_rss_bytes(pid: int) -> int:
    """``VmRSS`` of one process in bytes; 0 when it is gone or a zombie."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> tuple[int, int]:
    """Summed resident set size of ``pid`` and its descendants, and their count.

    Uses psutil when it is importable, otherwise ``/proc/<pid>/status`` (VmRSS).
    """
    try:
        import psutil
    except ImportError:
        pids = process_tree(pid)
        return sum(vm_rss_bytes(p) for p in pids), len(pids)
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total, len(procs)


class PeakSampler:
    """The largest summed RSS of ``pid``'s process tree while the ``with`` block runs.

    A daemon thread reads every process's ``VmRSS`` every :data:`SAMPLE_INTERVAL_S`
    (re-walking the tree every :data:`TREE_REFRESH_S`, so workers started meanwhile
    count), plus once on entry and once on exit. With ``pid=None`` it measures
    nothing and :attr:`peak_bytes` stays None. Reading a handful of small ``/proc``
    files costs the sampling thread well under a millisecond per sample.
    """

    def __init__(self, pid: int | None, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_bytes: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tree: list[int] = []
        self._walked = 0.0

    def sample(self) -> None:
        """Take one reading now."""
        if self.pid is None:
            return
        now = time.monotonic()
        if not self._tree or now - self._walked >= TREE_REFRESH_S:
            self._tree, self._walked = process_tree(self.pid), now
        total = sum(vm_rss_bytes(p) for p in self._tree)
        self.samples += 1
        if self.peak_bytes is None or total > self.peak_bytes:
            self.peak_bytes = total

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> PeakSampler:
        if self.pid is not None:
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.sample()

    @property
    def peak_mb(self) -> float | None:
        """:attr:`peak_bytes` in megabytes (10⁶ bytes)."""
        return None if self.peak_bytes is None else self.peak_bytes / 1e6
