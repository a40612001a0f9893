"""Record throughput of perfpilot's latency histogram.

Times scalar ``Histogram.record`` over 1e6 values and ``Histogram.record_many``
over batches of 10k values (1e7 in total), best of a few repeats, and prints
values per second for each. Run: ``python bench/histogram_record.py``.
"""

from __future__ import annotations

import time

import numpy as np

from perfpilot.stats.histogram import Histogram

SCALAR_VALUES = 1_000_000
BATCH_SIZE = 10_000
BATCH_VALUES = 10_000_000
REPEATS = 3


def latencies(n: int, seed: int = 42) -> np.ndarray:
    """Return ``n`` lognormal latencies in seconds (median 50 ms), within 1 µs to 1 h."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(mean=np.log(0.05), sigma=1.0, size=n), 1e-6, 3600.0)


def best_of(repeats: int, run: object) -> float:
    """Return the shortest wall time in seconds of ``repeats`` calls to ``run``."""
    assert callable(run)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Run both measurements and print one line each."""
    scalar_values = latencies(SCALAR_VALUES).tolist()  # Python floats, as a caller has them
    batches = [latencies(BATCH_SIZE, seed) for seed in range(BATCH_VALUES // BATCH_SIZE)]

    def run_scalar() -> None:
        hist = Histogram()
        record = hist.record
        for value in scalar_values:
            record(value)

    def run_batches() -> None:
        hist = Histogram()
        for batch in batches:
            hist.record_many(batch)

    scalar_s = best_of(REPEATS, run_scalar)
    batch_s = best_of(REPEATS, run_batches)
    print(f"record (scalar): {SCALAR_VALUES / scalar_s / 1e6:.2f} M values/s")
    print(f"record_many (batches of {BATCH_SIZE:,}): {BATCH_VALUES / batch_s / 1e6:.1f} M values/s")


if __name__ == "__main__":
    main()
