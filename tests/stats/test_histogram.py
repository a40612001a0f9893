"""Tests for perfpilot.stats.histogram."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfpilot.stats.histogram import FORMAT_VERSION, Histogram

FIXTURE_V1 = Path(__file__).parent.parent / "data" / "histogram-v1.bin"
# The values behind tests/data/histogram-v1.bin (the two last ones are invalid).
FIXTURE_VALUES = [0.001, 0.002, 0.002, 0.005, 0.010, 0.050, 0.100, 0.250, 1.5, -1.0, math.nan]

LOW_S, HIGH_S = 1e-6, 3600.0
QS = [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]

values_in_range = st.floats(min_value=LOW_S, max_value=HIGH_S, allow_nan=False)
percentile_q = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
slow = settings(max_examples=40, deadline=None)


def filled(values: Sequence[float] | np.ndarray) -> Histogram:
    hist = Histogram()
    hist.record_many(values)
    return hist


def assert_within_1pct(hist: Histogram, data: np.ndarray, qs: list[float]) -> None:
    expected = np.percentile(data, qs, method="inverted_cdf")
    got = hist.percentiles(qs)
    for q, want, have in zip(qs, expected.tolist(), got, strict=True):
        assert abs(have - want) <= 0.01 * want, f"p{q}: {have} vs numpy {want}"


def random_data(seed: int, kind: str, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        data = rng.uniform(LOW_S, HIGH_S, size)
    elif kind == "log-uniform":
        data = np.exp(rng.uniform(math.log(LOW_S), math.log(HIGH_S), size))
    elif kind == "lognormal":
        data = rng.lognormal(mean=math.log(0.05), sigma=1.5, size=size)
    else:  # a narrow cluster, many values per bucket
        data = rng.normal(0.2, 0.001, size)
    return np.clip(data, LOW_S, HIGH_S)


# -- accuracy against numpy ----------------------------------------------------------


@given(st.lists(values_in_range, min_size=1, max_size=300), percentile_q)
def test_percentile_within_1pct_of_numpy(values: list[float], q: float) -> None:
    data = np.asarray(values)
    assert_within_1pct(filled(data), data, [q])


@slow
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["uniform", "log-uniform", "lognormal", "cluster"]),
    st.integers(1, 20_000),
)
def test_percentiles_within_1pct_on_random_distributions(seed: int, kind: str, size: int) -> None:
    data = random_data(seed, kind, size)
    assert_within_1pct(filled(data), data, QS)


@given(st.lists(values_in_range, min_size=1, max_size=3), st.lists(percentile_q, max_size=10))
def test_tiny_sets_within_1pct(values: list[float], qs: list[float]) -> None:
    hist = Histogram()
    for value in values:
        hist.record(value)
    assert_within_1pct(hist, np.asarray(values), [*QS, *qs])


@given(st.lists(values_in_range, min_size=1, max_size=200))
def test_extreme_percentiles_are_exact_min_and_max(values: list[float]) -> None:
    hist = filled(values)
    assert hist.percentile(0) == min(values)
    assert hist.percentile(100) == max(values)


@given(values_in_range)
def test_bucket_holds_the_value_and_is_narrow(value: float) -> None:
    hist = Histogram()
    hist.record(value)
    [(lower, upper, n)] = list(hist.buckets())
    assert n == 1
    assert lower <= value < upper
    assert upper - lower <= lower / 64


def test_percentiles_keep_the_order_of_qs() -> None:
    data = random_data(7, "lognormal", 5000)
    hist = filled(data)
    qs = [99, 50, 0, 100, 90]
    assert hist.percentiles(qs) == [hist.percentile(q) for q in qs]


# -- exact statistics ----------------------------------------------------------------


@given(st.lists(values_in_range, min_size=1, max_size=300))
def test_count_min_max_mean_are_exact(values: list[float]) -> None:
    hist = filled(values)
    assert hist.count == len(hist) == len(values)
    assert hist.min_s == min(values)
    assert hist.max_s == max(values)
    # The sum is exact to one picosecond per value, 1e-6 relative at 1 µs.
    assert math.isclose(hist.sum_s, math.fsum(values), rel_tol=1e-6)
    assert math.isclose(hist.mean_s, math.fsum(values) / len(values), rel_tol=1e-6)


def test_mean_of_known_values() -> None:
    hist = filled([0.1, 0.2, 0.3, 0.4])
    assert hist.mean_s == 0.25
    assert hist.sum_s == 1.0


def test_empty_histogram() -> None:
    hist = Histogram()
    assert not hist
    assert len(hist) == hist.count == 0
    assert (hist.min_s, hist.max_s, hist.mean_s, hist.sum_s) == (0.0, 0.0, 0.0, 0.0)
    assert hist.percentile(50) == 0.0
    assert hist.percentiles([1, 99]) == [0.0, 0.0]
    assert list(hist.buckets()) == []
    assert repr(hist) == "Histogram(count=0, invalid=0)"
    assert Histogram.from_bytes(hist.to_bytes()) == hist


@pytest.mark.parametrize("q", [-0.001, 100.001, math.nan, math.inf])
def test_percentile_outside_range_raises(q: float) -> None:
    hist = filled([0.1])
    with pytest.raises(ValueError, match="percentile"):
        hist.percentile(q)
    with pytest.raises(ValueError, match="percentile"):
        hist.percentiles([50, q])


def test_invalid_values_are_counted_not_raised() -> None:
    bad = [-1.0, -1e-9, math.nan, math.inf, -math.inf, 1e300]
    scalar = Histogram()
    for value in [*bad, 0.5]:
        scalar.record(value)
    batch = filled(np.array([*bad, 0.5]))
    for hist in (scalar, batch):
        assert hist.invalid == len(bad)
        assert hist.count == 1
        assert hist.min_s == hist.max_s == hist.sum_s == 0.5
    assert scalar == batch

    only_bad = filled(bad)
    assert only_bad.invalid == len(bad)
    assert not only_bad


def test_out_of_range_values_keep_exact_min_and_max() -> None:
    values = [0.0, -0.0, 1e-9, 2e-7, 0.3, 5000.0, 86_400.0]
    scalar = Histogram()
    for value in values:
        scalar.record(value)
    batch = filled(values)
    assert scalar == batch
    for hist in (scalar, batch):
        assert hist.count == len(values)
        assert hist.min_s == 0.0
        assert math.copysign(1.0, hist.min_s) == 1.0
        assert hist.max_s == 86_400.0
        assert hist.percentile(0) == 0.0
        assert hist.percentile(100) == 86_400.0
        buckets = list(hist.buckets())
        assert buckets[0][0] == 0.0
        assert buckets[-1][1] == 86_400.0
        assert sum(n for _, _, n in buckets) == len(values)


def test_record_accepts_ints_and_numpy_scalars() -> None:
    hist = Histogram()
    hist.record(1)
    hist.record(np.float64(0.5))
    hist.record(np.float32(0.25))  # type: ignore[arg-type]  # works at run time
    assert hist.count == 3
    assert hist.max_s == 1.0
    assert hist.min_s == 0.25


def test_record_many_accepts_sequences_and_any_shape() -> None:
    grid = np.full((3, 4), 0.01)
    assert filled(grid) == filled([0.01] * 12) == filled(tuple([0.01] * 12))
    empty = filled([])
    assert empty == Histogram()


# -- record vs record_many, merge, copy ---------------------------------------------


@given(st.lists(values_in_range, max_size=400))
def test_record_and_record_many_agree(values: list[float]) -> None:
    scalar = Histogram()
    for value in values:
        scalar.record(value)
    assert scalar == filled(values)
    assert scalar.to_bytes() == filled(values).to_bytes()


def test_many_scalar_records_with_reads_in_between() -> None:
    # More values than the scalar buffer holds, read at awkward moments.
    data = random_data(9, "log-uniform", 5000)
    hist = Histogram()
    for i, value in enumerate(data.tolist()):
        hist.record(value)
        if i % 700 == 0:
            assert hist.count == i + 1
    assert hist == filled(data)
    assert_within_1pct(hist, data, QS)


def test_huge_ints_are_invalid() -> None:
    hist = Histogram()
    hist.record(10**400)
    hist.record(2)
    assert hist.invalid == 1
    assert hist.count == 1


@given(st.lists(values_in_range, max_size=300), st.lists(values_in_range, max_size=300))
def test_merge_equals_recording_everything_into_one(left: list[float], right: list[float]) -> None:
    # Mix the scalar (dict) and batch (array) paths on both sides.
    a = Histogram()
    for value in left:
        a.record(value)
    b = filled(right)
    a.merge(b)
    assert a == filled(left + right)
    assert b == filled(right)

    c = filled(right)
    d = Histogram()
    for value in left:
        d.record(value)
    c.merge(d)
    assert c == a


def test_merge_many_histograms_is_exact_and_order_free() -> None:
    parts = [random_data(seed, "lognormal", 1000) for seed in range(8)]
    forward, backward = Histogram(), Histogram()
    for part in parts:
        forward.merge(filled(part))
    for part in reversed(parts):
        backward.merge(filled(part))
    everything = filled(np.concatenate(parts))
    assert forward == backward == everything
    assert forward.sum_s == everything.sum_s
    assert forward.percentiles(QS) == everything.percentiles(QS)


def test_merge_with_itself_doubles() -> None:
    hist = Histogram()
    for value in [0.1, 0.2, 0.3]:
        hist.record(value)
    hist.merge(hist)
    assert hist == filled([0.1, 0.2, 0.3] * 2)


def test_merge_adds_invalid_counts() -> None:
    a, b = filled([0.1, -1.0]), filled([math.nan, 0.2])
    a.merge(b)
    assert a.invalid == 2
    assert a.count == 2


def test_copy_is_independent() -> None:
    hist = filled(random_data(3, "uniform", 500))
    hist.record(0.5)
    clone = hist.copy()
    assert clone == hist
    clone.record(0.001)
    clone.record_many([2.0, 3.0])
    assert clone != hist
    assert hist.count == 501


def test_equality() -> None:
    assert filled([0.1]) != filled([0.2])
    assert filled([0.1]) != filled([0.1, 0.1])
    assert filled([0.1, -1.0]) != filled([0.1])
    assert Histogram() != "Histogram()"
    with pytest.raises(TypeError):
        hash(Histogram())


def test_repr_shows_the_main_statistics() -> None:
    text = repr(filled([0.1, 0.2, 0.3]))
    assert text.startswith("Histogram(count=3, min_s=0.1, p50_s=")
    assert "max_s=0.3" in text


# -- serialization -------------------------------------------------------------------


@given(st.lists(values_in_range, max_size=300))
def test_bytes_round_trip(values: list[float]) -> None:
    hist = filled(values)
    data = hist.to_bytes()
    assert data[0] == FORMAT_VERSION
    restored = Histogram.from_bytes(data)
    assert restored == hist
    assert restored.to_bytes() == data
    assert restored.percentiles(QS) == hist.percentiles(QS)


def test_bytes_round_trip_of_a_large_histogram() -> None:
    hist = filled(random_data(11, "log-uniform", 100_000))
    restored = Histogram.from_bytes(hist.to_bytes())
    assert restored == hist
    restored.record_many([0.5, 1.0])
    hist.record_many([0.5, 1.0])
    assert restored == hist


def test_serialization_is_compact() -> None:
    assert len(filled([0.1, 0.2, 0.3]).to_bytes()) < 40
    # Sparse: 100k values in a narrow cluster take a few hundred bytes.
    assert len(filled(random_data(5, "cluster", 100_000)).to_bytes()) < 300


def test_corrupt_bytes_raise_value_error() -> None:
    data = filled(random_data(2, "lognormal", 200)).to_bytes()
    with pytest.raises(ValueError, match="empty"):
        Histogram.from_bytes(b"")
    with pytest.raises(ValueError, match="version 99"):
        Histogram.from_bytes(bytes([99]) + data[1:])
    with pytest.raises(ValueError, match="trailing"):
        Histogram.from_bytes(data + b"\x00")
    for cut in range(1, len(data)):
        with pytest.raises(ValueError, match="corrupt"):
            Histogram.from_bytes(data[:cut])


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_v1(
    invalid: int, sum_ps: int, min_s: float, max_s: float, buckets: list[tuple[int, int]]
) -> bytes:
    """Format 1 written by hand, independently of the code under test."""
    out = bytes([1]) + varint(invalid) + varint(sum_ps) + struct.pack("<dd", min_s, max_s)
    out += varint(len(buckets))
    previous = -1
    for index, n in buckets:
        out += varint(index - previous - 1) + varint(n)
        previous = index
    return out


def test_hand_encoded_v1_is_read() -> None:
    # 0.1 s is 0.8 * 2**-3: octave -3 - (-19) = 16, sub-bucket int(0.8 * 128) - 64 = 38.
    index = 16 * 64 + 38
    hist = Histogram.from_bytes(encode_v1(1, 2 * 10**11, 0.1, 0.1, [(index, 2)]))
    assert hist == filled([0.1, 0.1, -1.0])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((0, 10**11, 0.2, 0.1, [(1062, 1)]), "min"),  # max below min
        ((0, 10**11, 0.1, 0.1, [(1061, 1)]), "min/max outside"),  # wrong bucket
        ((0, 5 * 10**11, 0.1, 0.1, [(1062, 1)]), "sum"),
        ((0, 10**11, 0.1, 0.1, [(1062, 0)]), "count 0"),
        ((0, 10**11, 0.1, 0.1, [(5000, 1)]), "bucket 5000"),
        ((0, 10**11, math.nan, 0.1, [(1062, 1)]), "min nan"),
        ((0, 0, 0.0, 0.5, []), "without values"),
    ],
)
def test_inconsistent_bytes_raise_value_error(
    fields: tuple[int, int, float, float, list[tuple[int, int]]], message: str
) -> None:
    with pytest.raises(ValueError, match=f"corrupt histogram data: .*{message}"):
        Histogram.from_bytes(encode_v1(*fields))


def assert_rejected_or_consistent(data: bytes) -> None:
    try:
        hist = Histogram.from_bytes(data)
    except ValueError:
        return
    assert hist.count == sum(n for _, _, n in hist.buckets())
    assert Histogram.from_bytes(hist.to_bytes()) == hist


@given(st.binary(max_size=64).map(lambda rest: bytes([FORMAT_VERSION]) + rest))
def test_arbitrary_bytes_never_raise_anything_but_value_error(data: bytes) -> None:
    assert_rejected_or_consistent(data)


@given(
    st.lists(values_in_range, min_size=1, max_size=50),
    st.integers(min_value=1),
    st.integers(0, 255),
)
def test_mutated_bytes_never_raise_anything_but_value_error(
    values: list[float], position: int, byte: int
) -> None:
    data = bytearray(filled(values).to_bytes())
    data[position % len(data)] = byte
    assert_rejected_or_consistent(bytes(data))


def test_format_v1_fixture() -> None:
    data = FIXTURE_V1.read_bytes()
    assert data[0] == 1
    hist = Histogram.from_bytes(data)
    assert hist.count == 9
    assert hist.invalid == 2
    assert hist.min_s == 0.001
    assert hist.max_s == 1.5
    assert hist.sum_s == 1.92
    assert hist.percentile(0) == 0.001
    assert hist.percentile(100) == 1.5
    assert hist.percentile(50) == pytest.approx(0.010, rel=0.01)
    assert hist.percentile(25) == pytest.approx(0.002, rel=0.01)
    assert hist.percentile(80) == pytest.approx(0.250, rel=0.01)
    assert hist.percentile(90) == 1.5
    # Writing must still produce these exact bytes: a format change needs a new version.
    assert filled(FIXTURE_VALUES).to_bytes() == data
