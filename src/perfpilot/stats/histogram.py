"""The latency histogram: log-linear buckets, mergeable, serializable.

Values are durations in seconds (floats). Each power-of-two range from 2**-20 s
(about 0.95 µs) up to 2**12 s (4096 s, past one hour) is split into 64 linear
sub-buckets, so a bucket is at most 1/64 (1.6 %) of its lower bound wide. A
percentile reports the midpoint of the bucket holding the requested rank,
clamped to the exact minimum and maximum, which bounds the relative error at
0.5/64 (0.78 %). Values below the range land in the lowest bucket and values
above it in the highest one; the exact minimum and maximum are kept apart.

Scalar :meth:`Histogram.record` only appends to a small ``array('d')`` buffer
that the vectorized batch path absorbs when it fills up or when anything reads
the histogram, so the per-value Python cost is one method call. Counts are kept
sparse: a sorted ``uint16`` array of non-empty bucket indexes and an ``int64``
array of their counts, so thousands of per-second histograms stay small however
widely their latencies spread. The sum is kept as an exact integer number of
picoseconds, which makes ``merge`` exact and associative.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FORMAT_VERSION", "Histogram"]

FORMAT_VERSION = 1
"""The serialization format that :meth:`Histogram.to_bytes` writes (the first byte)."""

_SUB_BITS = 6
_SUB = 1 << _SUB_BITS  # linear sub-buckets per power of two
_EXP_MIN = -19  # math.frexp exponent of the lowest octave [2**-20, 2**-19)
_EXP_MAX = 12  # math.frexp exponent of the highest octave [2**11, 2**12)
_N_BUCKETS = (_EXP_MAX - _EXP_MIN + 1) * _SUB
_LAST = _N_BUCKETS - 1
# Index of v = m * 2**e (0.5 <= m < 1) is int(m * 2 * _SUB) + _SUB * e + _INDEX_BIAS.
_INDEX_BIAS = -_SUB * _EXP_MIN - _SUB
_LOW_S = math.ldexp(1.0, _EXP_MIN - 1)  # lower bound of the lowest bucket
_HIGH_S = math.ldexp(1.0, _EXP_MAX)  # upper bound of the highest bucket
# Values beyond this (about 3e10 years) are treated as invalid rather than overflowing.
_MAX_VALUE_S = 1e18
_PS_PER_S = 1e12
_PS_PER_S_INT = 10**12
_BUFFER_SIZE = 1024  # scalar values buffered (8 KiB at most) before the batch path absorbs them
_MAX_VARINT_BYTES = 32
_DOUBLE = struct.Struct("<d")

_Counts = npt.NDArray[np.int64]
_Indexes = npt.NDArray[np.uint16]


def _empty_indexes() -> _Indexes:
    return np.zeros(0, dtype=np.uint16)


def _empty_counts() -> _Counts:
    return np.zeros(0, dtype=np.int64)


def _index(value_s: float) -> int:
    """Return the bucket index of a valid (non-negative, finite) value."""
    if value_s < _LOW_S:
        return 0
    if value_s >= _HIGH_S:
        return _LAST
    mantissa, exponent = math.frexp(value_s)
    return int(mantissa * (2 * _SUB)) + _SUB * exponent + _INDEX_BIAS


def _bounds(index: int) -> tuple[float, float]:
    """Return the nominal ``[lower, upper)`` bounds of a bucket, in seconds."""
    octave, sub = divmod(index, _SUB)
    shift = octave + _EXP_MIN - 1 - _SUB_BITS
    return math.ldexp(_SUB + sub, shift), math.ldexp(_SUB + sub + 1, shift)


def _midpoint(index: int) -> float:
    """Return the midpoint of a bucket, in seconds."""
    octave, sub = divmod(index, _SUB)
    return math.ldexp(_SUB + sub + 0.5, octave + _EXP_MIN - 1 - _SUB_BITS)


def _to_ps(value_s: float) -> int:
    """Round a valid value to whole picoseconds (the unit of the exact sum)."""
    return int(value_s * _PS_PER_S + 0.5)


def _put_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (non-negative) as an unsigned LEB128 varint."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 varint at ``pos``; return it and the next position."""
    result = 0
    shift = 0
    for i in range(pos, min(len(data), pos + _MAX_VARINT_BYTES)):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i + 1
        shift += 7
    raise ValueError(f"corrupt histogram data: bad or truncated varint at byte {pos}")


class Histogram:
    """A mergeable latency histogram with at most 1 % relative error on percentiles.

    Negative, NaN, infinite and absurdly large (over 1e18 s) values are never
    recorded and never raise: they are counted in :attr:`invalid`, because
    recording runs in hot paths.

    Example:
        >>> h = Histogram()
        >>> h.record(0.120)
        >>> h.record_many([0.100, 0.250, 0.090])
        >>> h.count, h.max_s
        (4, 0.25)
        >>> round(h.percentile(50), 3)
        0.1
    """

    __slots__ = ("_buffer", "_count", "_counts", "_indexes", "_invalid", "_max", "_min", "_sum_ps")

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __init__(self) -> None:
        """Create an empty histogram."""
        self._buffer = array("d")
        self._indexes = _empty_indexes()
        self._counts = _empty_counts()
        self._count = 0
        self._sum_ps = 0
        self._min = math.inf
        self._max = -math.inf
        self._invalid = 0

    # -- recording ---------------------------------------------------------------

    def record(self, value_s: float) -> None:
        """Record one value (pure Python, no numpy per call).

        The value is buffered and absorbed in batches, so the cost per call is
        an append.

        Args:
            value_s: A duration in seconds. Invalid values are counted in
                :attr:`invalid` and otherwise ignored.
        """
        buffer = self._buffer
        try:
            buffer.append(value_s)
        except OverflowError:  # an int too large for a double
            self._invalid += 1
            return
        if len(buffer) >= _BUFFER_SIZE:
            self._drain()

    def record_many(self, values_s: npt.NDArray[Any] | Sequence[float]) -> None:
        """Record a batch of values, vectorized with numpy.

        Args:
            values_s: Durations in seconds, any shape. Invalid values are counted
                in :attr:`invalid` and otherwise ignored.
        """
        arr = np.asarray(values_s, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        valid = (arr >= 0.0) & (arr <= _MAX_VALUE_S)
        n_valid = int(np.count_nonzero(valid))
        if n_valid < arr.size:
            self._invalid += arr.size - n_valid
            if n_valid == 0:
                return
            arr = arr[valid]
        vmin = float(arr.min()) + 0.0  # + 0.0 turns -0.0 into 0.0
        vmax = float(arr.max())

        mantissa, exponent = np.frexp(arr)
        index = (mantissa * (2 * _SUB)).astype(np.int64)
        index += exponent * _SUB
        index += _INDEX_BIAS
        np.clip(index, 0, _LAST, out=index)
        if vmin < _LOW_S:  # frexp(0) is (0, 0), which the formula misplaces
            index[arr < _LOW_S] = 0
        lo, hi = _index(vmin), _index(vmax)
        index -= lo
        self._absorb(lo, np.bincount(index, minlength=hi - lo + 1).astype(np.int64))

        self._count += n_valid
        self._sum_ps += _sum_ps(arr, vmax)
        self._min = min(self._min, vmin)
        self._max = max(self._max, vmax)

    def _drain(self) -> None:
        """Absorb the buffered scalar values through the batch path."""
        buffer, self._buffer = self._buffer, array("d")
        self.record_many(np.frombuffer(buffer, dtype=np.float64))

    def _absorb(self, lo: int, dense: _Counts) -> None:
        """Add ``dense`` (counts for indexes ``lo, lo + 1, ...``; reused) to the buckets."""
        if self._indexes.size:
            old_lo, old_hi = int(self._indexes[0]), int(self._indexes[-1])
            hi = lo + dense.size - 1
            if old_lo < lo or old_hi > hi:
                new_lo = min(lo, old_lo)
                grown = np.zeros(max(hi, old_hi) - new_lo + 1, dtype=np.int64)
                grown[lo - new_lo : lo - new_lo + dense.size] = dense
                lo, dense = new_lo, grown
            dense[self._indexes.astype(np.intp) - lo] += self._counts
        nonzero = np.flatnonzero(dense)
        self._indexes = (nonzero + lo).astype(np.uint16)
        self._counts = dense[nonzero]

    def _settled(self) -> Histogram:
        """Absorb buffered values, so the summary fields and buckets are complete."""
        if self._buffer:
            self._drain()
        return self

    # -- combining ---------------------------------------------------------------

    def merge(self, other: Histogram) -> None:
        """Add every value of ``other`` into this histogram, exactly.

        Args:
            other: The histogram to add; its contents are not changed.
        """
        other._settled()
        if other._indexes.size:
            lo = int(other._indexes[0])
            dense = np.zeros(int(other._indexes[-1]) - lo + 1, dtype=np.int64)
            dense[other._indexes.astype(np.intp) - lo] = other._counts
            self._absorb(lo, dense)
        self._count += other._count
        self._sum_ps += other._sum_ps
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        self._invalid += other._invalid

    def copy(self) -> Histogram:
        """Return an independent copy of this histogram."""
        clone = Histogram()
        clone.merge(self)
        return clone

    # -- statistics --------------------------------------------------------------

    @property
    def invalid(self) -> int:
        """How many values were ignored as negative, NaN, infinite or too large."""
        return self._settled()._invalid

    @property
    def count(self) -> int:
        """The number of values recorded (invalid ones excluded)."""
        return self._settled()._count

    @property
    def sum_s(self) -> float:
        """The sum of the values in seconds, exact to one picosecond per value."""
        return self._settled()._sum_ps / _PS_PER_S_INT

    @property
    def min_s(self) -> float:
        """The exact smallest value in seconds, or 0.0 when empty."""
        return self._min if self._settled()._count else 0.0

    @property
    def max_s(self) -> float:
        """The exact largest value in seconds, or 0.0 when empty."""
        return self._max if self._settled()._count else 0.0

    @property
    def mean_s(self) -> float:
        """The arithmetic mean in seconds (from the exact sum), or 0.0 when empty."""
        n = self._settled()._count
        return self._sum_ps / (n * _PS_PER_S_INT) if n else 0.0

    def percentile(self, q: float) -> float:
        """Return the ``q``-th percentile in seconds, by the nearest-rank method.

        The answer estimates the value at rank ``ceil(q / 100 * count)`` (at least
        1), like ``numpy.percentile(..., method="inverted_cdf")``, within 1 %
        relative error for values from 1 µs to 1 h. ``q=0`` gives the exact
        minimum and ``q=100`` the exact maximum.

        Args:
            q: The percentile, from 0 to 100.

        Returns:
            The percentile in seconds, or 0.0 when the histogram is empty.

        Raises:
            ValueError: If ``q`` is outside [0, 100] or NaN.
        """
        return self.percentiles([q])[0]

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """Return several percentiles in one pass; see :meth:`percentile`.

        Args:
            qs: Percentiles, each from 0 to 100, in any order.

        Returns:
            The percentiles in seconds, in the order of ``qs`` (0.0 each when empty).

        Raises:
            ValueError: If any ``q`` is outside [0, 100] or NaN.
        """
        for q in qs:
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentile must be in [0, 100], got {q!r}")
        n = self._settled()._count
        if n == 0:
            return [0.0 for _ in qs]
        # Same arithmetic as numpy's inverted_cdf, so ranks agree at exact boundaries.
        ranks = [min(max(math.ceil(n * (q / 100.0)), 1), n) for q in qs]
        positions = np.searchsorted(np.cumsum(self._counts), ranks, side="left").tolist()
        lo, hi = self._min, self._max
        result: list[float] = []
        for rank, position in zip(ranks, positions, strict=True):
            if rank == 1:
                result.append(lo)
            elif rank == n:
                result.append(hi)
            else:
                result.append(min(max(_midpoint(int(self._indexes[position])), lo), hi))
        return result

    def buckets(self) -> Iterator[tuple[float, float, int]]:
        """Yield ``(lower_s, upper_s, count)`` for each non-empty bucket, ascending.

        The lowest and highest buckets also hold out-of-range values, so their
        bounds are widened to include the exact minimum and maximum.
        """
        self._settled()
        for index, n in zip(self._indexes.tolist(), self._counts.tolist(), strict=True):
            lower, upper = _bounds(index)
            if index == 0:
                lower = min(lower, self._min)
            elif index == _LAST:
                upper = max(upper, self._max)
            yield lower, upper, n

    # -- serialization -----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialize to a compact, versioned byte string.

        Format 1: the version byte, then varints for ``invalid`` and the sum in
        picoseconds, the minimum and maximum as little-endian doubles, a varint
        number of non-empty buckets, and for each one a varint index gap (the
        first index itself, then the distance minus one) and a varint count.

        Returns:
            The serialized histogram; :meth:`from_bytes` reads it back.
        """
        self._settled()
        out = bytearray([FORMAT_VERSION])
        _put_varint(out, self._invalid)
        _put_varint(out, self._sum_ps)
        out += _DOUBLE.pack(self.min_s)
        out += _DOUBLE.pack(self.max_s)
        _put_varint(out, self._indexes.size)
        previous = -1
        for index, n in zip(self._indexes.tolist(), self._counts.tolist(), strict=True):
            _put_varint(out, index - previous - 1)
            _put_varint(out, n)
            previous = index
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> Histogram:
        """Rebuild a histogram written by :meth:`to_bytes`.

        Args:
            data: The serialized histogram.

        Returns:
            An equal histogram.

        Raises:
            ValueError: If the data is empty, truncated, inconsistent, or of an
                unknown format version.
        """
        data = bytes(data)
        if not data:
            raise ValueError("corrupt histogram data: empty")
        if data[0] != FORMAT_VERSION:
            raise ValueError(
                f"unknown histogram format version {data[0]} (this perfpilot reads "
                f"version {FORMAT_VERSION})"
            )
        invalid, pos = _get_varint(data, 1)
        sum_ps, pos = _get_varint(data, pos)
        if pos + 2 * _DOUBLE.size > len(data):
            raise ValueError("corrupt histogram data: truncated min/max")
        (min_s,) = _DOUBLE.unpack_from(data, pos)
        (max_s,) = _DOUBLE.unpack_from(data, pos + _DOUBLE.size)
        pos += 2 * _DOUBLE.size
        n_buckets, pos = _get_varint(data, pos)
        if n_buckets > _N_BUCKETS:
            raise ValueError(f"corrupt histogram data: {n_buckets} buckets")
        keys: list[int] = []
        values: list[int] = []
        index = -1
        for _ in range(n_buckets):
            gap, pos = _get_varint(data, pos)
            n, pos = _get_varint(data, pos)
            index += gap + 1
            if index > _LAST or not 0 < n < 2**63:
                raise ValueError(f"corrupt histogram data: bucket {index} with count {n}")
            keys.append(index)
            values.append(n)
        if pos != len(data):
            raise ValueError(f"corrupt histogram data: {len(data) - pos} trailing bytes")
        count = sum(values)
        _check_summary(count, sum_ps, min_s, max_s, keys)

        hist = cls()
        hist._indexes = np.array(keys, dtype=np.uint16)
        hist._counts = np.array(values, dtype=np.int64)
        hist._count = count
        hist._sum_ps = sum_ps
        hist._invalid = invalid
        if count:
            hist._min, hist._max = min_s, max_s
        return hist

    # -- dunders -----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Compare counts, exact summary statistics and every bucket."""
        if not isinstance(other, Histogram):
            return NotImplemented
        self._settled()
        other._settled()
        return (
            (self._count, self._sum_ps, self._invalid, self.min_s, self.max_s)
            == (other._count, other._sum_ps, other._invalid, other.min_s, other.max_s)
            and np.array_equal(self._indexes, other._indexes)
            and np.array_equal(self._counts, other._counts)
        )

    def __len__(self) -> int:
        """Return the number of values recorded."""
        return self.count

    def __bool__(self) -> bool:
        """Return whether any value was recorded."""
        return self.count > 0

    def __repr__(self) -> str:
        """Return a one-line summary with the main statistics."""
        n = self.count
        if not n:
            return f"Histogram(count=0, invalid={self._invalid})"
        p50, p99 = self.percentiles([50, 99])
        return (
            f"Histogram(count={n}, min_s={self._min:.6g}, p50_s={p50:.6g}, "
            f"p99_s={p99:.6g}, max_s={self._max:.6g}, invalid={self._invalid})"
        )


def _sum_ps(arr: npt.NDArray[np.float64], vmax: float) -> int:
    """Return the exact sum of ``arr`` rounded value by value to picoseconds."""
    ps = np.floor(arr * _PS_PER_S + 0.5)
    max_ps = _to_ps(vmax)
    if max_ps * arr.size < 2**62:
        return int(ps.astype(np.int64).sum())
    if max_ps < 2**62:
        # Split each value so that neither partial sum can overflow int64.
        ps_int = ps.astype(np.int64)
        high = int((ps_int >> 32).sum())
        low = int((ps_int & 0xFFFFFFFF).sum())
        return (high << 32) + low
    return sum(int(x) for x in ps.tolist())


def _check_summary(count: int, sum_ps: int, min_s: float, max_s: float, keys: list[int]) -> None:
    """Raise ValueError unless decoded summary fields agree with the buckets."""
    if count == 0:
        if sum_ps or min_s or max_s:
            raise ValueError("corrupt histogram data: statistics without values")
        return
    if count >= 2**63:
        raise ValueError(f"corrupt histogram data: count {count} too large")
    if not 0.0 <= min_s <= max_s <= _MAX_VALUE_S:
        raise ValueError(f"corrupt histogram data: min {min_s!r}, max {max_s!r}")
    if _index(min_s) != keys[0] or _index(max_s) != keys[-1]:
        raise ValueError("corrupt histogram data: min/max outside the non-empty buckets")
    if not count * _to_ps(min_s) <= sum_ps <= count * _to_ps(max_s):
        raise ValueError("corrupt histogram data: sum outside count * [min, max]")
