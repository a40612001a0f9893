"""The resource sampler: real psutil figures, CPU deltas, and never raising."""

from __future__ import annotations

import logging
import os
import sys
import types
from collections import namedtuple
from typing import Any

import pytest

from perfpilot.app_records import ResourceSample
from perfpilot.instrument import context, resources
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import Recorder
from perfpilot.instrument.resources import ResourceSampler

CpuTimes = namedtuple("CpuTimes", "user system")
HostTimes = namedtuple("HostTimes", "user nice system idle iowait guest guest_nice")
Memory = namedtuple("Memory", "total used")
Disk = namedtuple("Disk", "read_bytes write_bytes")
Net = namedtuple("Net", "bytes_sent bytes_recv")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_warned", set())


class FakeProcess:
    def __init__(self, ps: FakePsutil, pid: int) -> None:
        self.ps = ps
        self.pid = pid

    def oneshot(self) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def cpu_times(self) -> CpuTimes:
        return CpuTimes(self.ps.proc_cpu, 0.0)

    def memory_info(self) -> Any:
        if self.ps.fail:
            raise self.ps.fail
        return types.SimpleNamespace(rss=123_456)

    def num_threads(self) -> int:
        return 7

    def num_fds(self) -> int:
        return 11


class FakePsutil:
    """Just enough of psutil, with counters the test moves by hand."""

    def __init__(self) -> None:
        self.proc_cpu = 0.0
        self.host = HostTimes(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        self.fail: Exception | None = None
        self.disk: Any = Disk(100, 200)
        self.net: Any = Net(300, 400)
        self.processes: list[FakeProcess] = []

    def Process(self, pid: int) -> FakeProcess:
        process = FakeProcess(self, pid)
        self.processes.append(process)
        return process

    def cpu_times(self) -> HostTimes:
        return self.host

    def virtual_memory(self) -> Memory:
        return Memory(total=1000, used=600)

    def disk_io_counters(self) -> Any:
        if isinstance(self.disk, Exception):
            raise self.disk
        return self.disk

    def net_io_counters(self) -> Any:
        if isinstance(self.net, Exception):
            raise self.net
        return self.net


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_real_psutil_sample_describes_this_process() -> None:
    sampler = ResourceSampler()
    sample = sampler()
    assert isinstance(sample, ResourceSample)
    assert sample.pid == os.getpid()
    assert sample.rss_bytes > 1_000_000
    assert sample.threads >= 1
    assert sample.open_files >= 3  # stdin, stdout, stderr at least
    assert 0 < sample.host_memory_used_bytes <= sample.host_memory_total_bytes
    assert sample.cpu_percent >= 0.0
    assert 0.0 <= sample.host_cpu_percent <= 100.0
    assert sample.disk_read_bytes >= 0 and sample.net_recv_bytes >= 0
    later = sampler()
    assert later is not None and later.at >= sample.at


def test_cpu_percent_covers_the_time_since_the_previous_call() -> None:
    ps, mono = FakePsutil(), Clock()
    sampler = ResourceSampler(ps, clock=lambda: 1234.5, monotonic=mono)
    ps.proc_cpu = 0.5  # half a CPU second ...
    mono.now += 2.0  # ... over two seconds
    ps.host = HostTimes(30.0, 0.0, 10.0, 50.0, 10.0, 0.0, 0.0)  # 40 busy of 100
    sample = sampler()
    assert sample is not None
    assert sample.cpu_percent == pytest.approx(25.0)
    assert sample.host_cpu_percent == pytest.approx(40.0)
    assert sample.at == 1234.5
    assert (sample.rss_bytes, sample.threads, sample.open_files) == (123_456, 7, 11)
    assert (sample.host_memory_used_bytes, sample.host_memory_total_bytes) == (600, 1000)
    assert (sample.disk_read_bytes, sample.disk_write_bytes) == (100, 200)
    assert (sample.net_sent_bytes, sample.net_recv_bytes) == (300, 400)

    ps.proc_cpu = 2.5  # two more CPU seconds over one second: two busy threads
    mono.now += 1.0
    second = sampler()
    assert second is not None and second.cpu_percent == pytest.approx(200.0)
    assert second.host_cpu_percent == 0.0  # host counters did not move


def test_guest_time_is_not_counted_twice() -> None:
    ps = FakePsutil()
    sampler = ResourceSampler(ps, monotonic=Clock())
    # Linux user time already includes guest time
    ps.host = HostTimes(50.0, 0.0, 0.0, 50.0, 0.0, 20.0, 0.0)
    sample = sampler()
    assert sample is not None and sample.host_cpu_percent == pytest.approx(50.0)


def test_psutil_error_returns_none_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    ps = FakePsutil()
    sampler = ResourceSampler(ps, monotonic=Clock())
    ps.fail = PermissionError("denied")
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        assert sampler() is None
        assert sampler() is None
    assert len([r for r in caplog.records if "resource sample failed" in r.message]) == 1
    ps.fail = None
    assert sampler() is not None  # recovers once psutil does


def test_missing_counters_are_zero_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    ps = FakePsutil()
    ps.disk = None  # psutil's answer on a host without disks
    ps.net = OSError("no /proc/net/dev")
    sampler = ResourceSampler(ps, monotonic=Clock())
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        sample = sampler()
    assert sample is not None
    assert (sample.disk_read_bytes, sample.disk_write_bytes) == (0, 0)
    assert (sample.net_sent_bytes, sample.net_recv_bytes) == (0, 0)
    assert sample.rss_bytes == 123_456
    assert any("net counters not sampled" in r.message for r in caplog.records)


def test_open_files_without_num_fds_and_when_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    ps = FakePsutil()
    sampler = ResourceSampler(ps, monotonic=Clock())
    monkeypatch.delattr(FakeProcess, "num_fds")
    monkeypatch.setattr(FakeProcess, "open_files", lambda self: ["a", "b"], raising=False)
    sample = sampler()
    assert sample is not None and sample.open_files == 2

    def denied(self: FakeProcess) -> list[str]:
        raise PermissionError("AccessDenied")

    monkeypatch.setattr(FakeProcess, "open_files", denied)
    sample = sampler()
    assert sample is not None and sample.open_files == 0


def test_a_forked_child_measures_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    ps, mono = FakePsutil(), Clock()
    sampler = ResourceSampler(ps, monotonic=mono)
    assert ps.processes[-1].pid == os.getpid()
    monkeypatch.setattr(resources, "os", types.SimpleNamespace(getpid=lambda: 4242))
    ps.proc_cpu = 9.0  # the parent's CPU time, inherited counters: not the child's use
    mono.now += 1.0
    sample = sampler()
    assert sample is not None
    assert sample.pid == 4242 and ps.processes[-1].pid == 4242
    assert sample.cpu_percent == 0.0  # re-primed for the child


def test_without_psutil_every_call_is_none(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # makes the import fail
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        sampler = ResourceSampler()
        assert sampler() is None
    assert any("no resource sampling" in r.message for r in caplog.records)


def test_the_flusher_puts_one_sample_in_each_snapshot() -> None:
    snapshots: list[Any] = []
    flusher = Flusher(
        Recorder(), snapshots.append, lambda sql, db: ("f", sql), sampler=ResourceSampler()
    )
    flusher.flush()
    flusher.flush()
    assert [len(s.resources) for s in snapshots] == [1, 1]
    assert snapshots[0].resources[0].pid == os.getpid()
