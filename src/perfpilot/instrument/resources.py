"""The resource sampler: process and host figures from psutil, once per flush.

The flusher calls a :class:`ResourceSampler` once per interval, in its own
thread. CPU percentages are computed from the CPU-time counters read at the
previous call, so each sample covers exactly one flush interval and nothing
else in the process (another ``psutil.cpu_percent`` caller) disturbs them.
Disk and network figures are the host's cumulative counters; the store or the
reader takes differences.

psutil is imported when the sampler is built, never when this module is
imported, and nothing here raises: a figure the platform does not offer (open
files, disk counters in a container) is reported as 0, and any other psutil
error makes that call return ``None``, logged once.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from perfpilot.app_records import ResourceSample
from perfpilot.instrument.context import warn_once


class ResourceSampler:
    """Samples this process and its host; call it with no arguments.

    The first reading of the CPU counters happens when the sampler is built
    (and again after a fork, for the child's own process), so the first call
    already reports CPU use since then; if that priming failed, the first call
    primes them and reports 0 %.

    Args:
        psutil_module: The psutil module (tests pass a fake); imported when ``None``.
        clock: Wall clock for the samples' ``at`` (Unix time).
        monotonic: The clock that process CPU time is divided by.

    Example:
        >>> sampler = ResourceSampler()
        >>> sample = sampler()
        >>> sample is None or sample.rss_bytes > 0
        True
    """

    def __init__(
        self,
        psutil_module: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._psutil = psutil_module
        self._clock = clock
        self._monotonic = monotonic
        self._pid = -1
        self._process: Any = None
        self._proc_cpu: tuple[float, float] | None = None  # (cpu seconds, monotonic)
        self._host_cpu: tuple[float, float] | None = None  # (busy seconds, total seconds)
        if self._psutil is None:
            try:
                # imported by name: psutil ships no type information
                self._psutil = importlib.import_module("psutil")
            except Exception as exc:
                warn_once("resources-import", "perfpilot: no resource sampling (psutil: %r)", exc)
                return
        try:
            self._prime()
        except Exception as exc:
            warn_once("resources", "perfpilot: resource sample failed: %r", exc)

    def __call__(self) -> ResourceSample | None:
        """Take one sample; ``None`` (logged once) when psutil fails."""
        if self._psutil is None:
            return None
        try:
            return self._sample()
        except Exception as exc:
            warn_once("resources", "perfpilot: resource sample failed: %r", exc)
            return None

    # -- internals ---------------------------------------------------------------
    def _prime(self) -> None:
        """(Re)create the process handle and read the CPU counters once."""
        pid = os.getpid()
        self._process = self._psutil.Process(pid)
        self._pid = pid
        self._proc_cpu = (_process_cpu_s(self._process), self._monotonic())
        self._host_cpu = _host_cpu(self._psutil)

    def _sample(self) -> ResourceSample:
        ps = self._psutil
        if self._process is None or self._pid != os.getpid():
            # a forked child must measure itself, not the parent it was copied from
            self._prime()
            cpu_percent = 0.0
            host_cpu_percent = 0.0
        else:
            cpu_percent = self._process_cpu_percent()
            host_cpu_percent = self._host_cpu_percent()
        process = self._process
        with process.oneshot():
            rss = int(process.memory_info().rss)
            threads = int(process.num_threads())
            open_files = self._open_files(process)
        memory = ps.virtual_memory()
        disk_read, disk_write = self._counters(
            "disk", ps.disk_io_counters, "read_bytes", "write_bytes"
        )
        net_sent, net_recv = self._counters("net", ps.net_io_counters, "bytes_sent", "bytes_recv")
        return ResourceSample(
            at=self._clock(),
            pid=self._pid,
            rss_bytes=rss,
            cpu_percent=cpu_percent,
            threads=threads,
            open_files=open_files,
            host_cpu_percent=host_cpu_percent,
            host_memory_used_bytes=int(memory.used),
            host_memory_total_bytes=int(memory.total),
            disk_read_bytes=disk_read,
            disk_write_bytes=disk_write,
            net_sent_bytes=net_sent,
            net_recv_bytes=net_recv,
        )

    def _process_cpu_percent(self) -> float:
        """Process CPU use since the previous call, in percent of one core."""
        now_cpu, now = _process_cpu_s(self._process), self._monotonic()
        previous = self._proc_cpu
        self._proc_cpu = (now_cpu, now)
        if previous is None or now <= previous[1]:
            return 0.0
        return max(0.0, (now_cpu - previous[0]) / (now - previous[1]) * 100.0)

    def _host_cpu_percent(self) -> float:
        """Host CPU use since the previous call, in percent of all cores."""
        busy, total = _host_cpu(self._psutil)
        previous = self._host_cpu
        self._host_cpu = (busy, total)
        if previous is None or total <= previous[1]:
            return 0.0
        return min(100.0, max(0.0, (busy - previous[0]) / (total - previous[1]) * 100.0))

    def _open_files(self, process: Any) -> int:
        """File descriptors (POSIX) or open files; 0 where the platform says no."""
        try:
            if hasattr(process, "num_fds"):
                return int(process.num_fds())
            return len(process.open_files())
        except Exception as exc:
            warn_once("resources-files", "perfpilot: open files not sampled: %r", exc)
            return 0

    def _counters(
        self, name: str, read: Callable[[], Any], first: str, second: str
    ) -> tuple[int, int]:
        """Two fields of a host-wide counter; zeros where it does not exist."""
        try:
            counters = read()
            if counters is None:  # psutil's answer on hosts without disks or NICs
                return 0, 0
            return int(getattr(counters, first)), int(getattr(counters, second))
        except Exception as exc:
            warn_once(f"resources-{name}", "perfpilot: %s counters not sampled: %r", name, exc)
            return 0, 0


def _process_cpu_s(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user) + float(times.system)


def _host_cpu(ps: Any) -> tuple[float, float]:
    """``(busy, total)`` CPU seconds of the host, summed over cores.

    As psutil counts it: idle and I/O wait are not busy, and guest time is
    already inside user time on Linux, so it is not counted twice.
    """
    times = ps.cpu_times()
    total = float(sum(times))
    total -= float(getattr(times, "guest", 0.0)) + float(getattr(times, "guest_nice", 0.0))
    busy = total - float(times.idle) - float(getattr(times, "iowait", 0.0))
    return busy, total
