"""Resource detectors: low cache hit rates, memory growth (leak suspects), pool waits."""

from __future__ import annotations

from perfpilot.analyze.appdata import AppData
from perfpilot.analyze.breakdown import merge_by
from perfpilot.analyze.findings import Finding, Fix, Impact, finding_id
from perfpilot.analyze.options import DiagnoseOptions
from perfpilot.analyze.remedies import bounded_cache_code, leak_hunt_code, pool_code
from perfpilot.analyze.traffic import PSEUDO_ROUTES, route_traffic
from perfpilot.app_records import CacheRow, ResourceSample
from perfpilot.stats.trend import linear_trend

MIB = 1024 * 1024


def cache_hit_rate(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """A cache used by a route whose hit rate is under ``cache_min_hit_rate``.

    The saving is estimated from the route's database and outbound time per
    request (what a hit avoids), scaled by how many misses reaching the target
    hit rate would turn into hits.
    """
    traffic = route_traffic(app)
    findings = []
    for row in merge_by(app.caches, lambda r: (r.cache, r.route)).values():
        lookups = row.hits + row.misses
        if lookups < options.cache_min_lookups:
            continue
        rate = row.hits / lookups
        if rate >= options.cache_min_hit_rate:
            continue
        route = traffic.get(row.route)
        where = route.label if route is not None else row.route
        backend_s = (route.db_time_s + route.outbound_time_s) / route.requests if route else 0.0
        recoverable = (options.cache_min_hit_rate - rate) / (1 - rate) if rate < 1 else 0.0
        never = row.hits == 0
        code, language = bounded_cache_code(row.cache)
        findings.append(
            Finding(
                id=finding_id("low_cache_hit_rate", row.cache, row.route),
                kind="low_cache_hit_rate",
                severity="medium" if rate < options.cache_min_hit_rate / 2 else "low",
                title=(
                    f"Cache {row.cache} on {where}: {rate:.0%} hits over {lookups} lookups"
                    + (" (no key ever repeated)" if never else "")
                ),
                subject=f"{row.cache} {where}",
                evidence={
                    "route": row.route,
                    "cache": row.cache,
                    "hits": row.hits,
                    "misses": row.misses,
                    "hit_rate": round(rate, 4),
                    "target_hit_rate": options.cache_min_hit_rate,
                    "backend_ms_per_request": backend_s * 1000,
                },
                impact=Impact(
                    time_per_request_s=backend_s * recoverable,
                    requests_per_s=route.requests_per_s if route else 0.0,
                    note="database and outbound time a hit avoids, at the target hit rate",
                ),
                fix=Fix(
                    summary=(
                        "Every lookup misses, so the cache only grows: key it by what "
                        "determines the answer, bound it (TTL/LRU), or drop it."
                        if never
                        else "Bound the cache with a TTL/LRU policy sized to the working set, "
                        "and check that its keys repeat."
                    ),
                    code=code,
                    language=language,
                ),
                confidence=0.8 if never else 0.6,
            )
        )
    return findings


def memory_growth(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """A significant upward RSS trend in one process: a leak suspect.

    Per process id, after leaving out the first ``memory_warmup_share`` of the
    sampled time (imports, first requests), least-squares lines through (time,
    RSS) over the remaining samples and over their later half. Reported when
    the later half still grows: its slope is at least ``memory_min_t`` standard
    errors above zero and its fitted growth at least ``memory_min_growth_mb``
    MiB, and the whole remaining window trends up too. A warm-up that levels
    off, or memory a big response freed and the allocator kept, is not a leak.
    Suspects are the caches that only miss (each miss stores a new entry).
    """
    by_pid: dict[int, list[ResourceSample]] = {}
    for sample in app.resources:
        by_pid.setdefault(sample.pid, []).append(sample)
    suspects = _growing_caches(app.caches)
    findings = []
    for pid, all_samples in sorted(by_pid.items()):
        all_samples.sort(key=lambda s: s.at)
        first, last = all_samples[0].at, all_samples[-1].at
        warm = first + (last - first) * options.memory_warmup_share
        samples = [s for s in all_samples if s.at >= warm]
        if len(samples) < options.memory_min_samples:
            continue
        t0 = samples[0].at
        xs = [s.at - t0 for s in samples]
        ys = [s.rss_bytes / MIB for s in samples]
        trend = linear_trend(xs, ys)
        half = len(samples) // 2
        later = linear_trend(xs[half:], ys[half:])
        if (
            later.t_stat < options.memory_min_t
            or later.change < options.memory_min_growth_mb
            or trend.slope <= 0
        ):
            continue
        per_hour = later.slope * 3600
        code, language = leak_hunt_code()
        top = suspects[0] if suspects else None
        findings.append(
            Finding(
                id=finding_id("memory_growth", str(pid)),
                kind="memory_growth",
                severity="high" if per_hour >= 512 else "medium" if per_hour >= 64 else "low",
                title=(
                    f"Memory grows in process {pid}: {ys[0]:.0f} -> {ys[-1]:.0f} MiB, "
                    f"still {later.slope * 60:.1f} MiB/min at the end"
                    + (f"; suspect: cache {top.cache} on {top.route}" if top else "")
                ),
                subject=f"pid {pid}",
                evidence={
                    "route": top.route if top else None,
                    "pid": pid,
                    "samples": len(samples),
                    "window_s": trend.x_span,
                    "rss_first_mib": ys[0],
                    "rss_last_mib": ys[-1],
                    "slope_mib_per_min": trend.slope * 60,
                    "recent_slope_mib_per_min": later.slope * 60,
                    "recent_slope_t": later.t_stat,
                    "recent_growth_mib": later.change,
                    "r_squared": trend.r_squared,
                    "suspects": [
                        {"cache": c.cache, "route": c.route, "misses": c.misses, "hits": c.hits}
                        for c in suspects
                    ],
                },
                impact=Impact(note=f"{per_hour:.0f} MiB per hour until the process is restarted"),
                fix=Fix(
                    summary=(
                        f"Bound the cache {top.cache} (it stores every miss and never hits); "
                        "confirm with tracemalloc which lines hold the growth."
                        if top
                        else "Find what holds the growing memory with tracemalloc, then bound it."
                    ),
                    code=bounded_cache_code(top.cache)[0] + "\n" + code if top else code,
                    language=language,
                ),
                confidence=min(0.9, 0.5 + later.r_squared * 0.4),
            )
        )
    return findings


def _growing_caches(rows: tuple[CacheRow, ...]) -> list[CacheRow]:
    """Caches per (cache, route) that miss at least as often as they hit, most misses
    first: in-process caches of this kind store an entry per miss."""
    merged = merge_by(rows, lambda r: (r.cache, r.route)).values()
    growing = [
        row
        for row in merged
        if row.route not in PSEUDO_ROUTES and row.misses >= max(1, row.hits) and row.misses >= 10
    ]
    return sorted(growing, key=lambda r: r.misses, reverse=True)


def pool_waits(app: AppData, options: DiagnoseOptions) -> list[Finding]:
    """Connection-pool checkouts that wait: the pool is smaller than the concurrency."""
    findings = []
    requests = app.request_count
    for pool in merge_by(app.pools, lambda r: r.pool).values():
        if not pool.checkouts:
            continue
        mean_ms = pool.wait_s / pool.checkouts * 1000
        if mean_ms < options.pool_min_wait_ms:
            continue
        peak = pool.checked_out_max + pool.overflow_max
        size = max(pool.size + 1, peak + 2)
        code, language = pool_code(size, max(5, size // 2))
        findings.append(
            Finding(
                id=finding_id("pool_wait", pool.pool),
                kind="pool_wait",
                severity="high" if mean_ms >= 50 else "medium",
                title=(
                    f"Connections wait for the pool {pool.pool}: {mean_ms:.1f} ms per checkout "
                    f"(longest {pool.max_wait_s * 1000:.0f} ms), pool size {pool.size}"
                ),
                subject=pool.pool,
                evidence={
                    "pool": pool.pool,
                    "checkouts": pool.checkouts,
                    "mean_wait_ms": mean_ms,
                    "max_wait_ms": pool.max_wait_s * 1000,
                    "checked_out_max": pool.checked_out_max,
                    "overflow_max": pool.overflow_max,
                    "size": pool.size,
                    "suggested_size": size,
                },
                impact=Impact(
                    time_per_request_s=pool.wait_s / requests if requests else 0.0,
                    requests_per_s=requests / app.duration_s,
                    note="time requests spent waiting for a connection",
                ),
                fix=Fix(
                    summary=(
                        f"Raise the pool size to about {size} (the observed peak plus headroom), "
                        "within the database's connection limit; or shorten how long "
                        "connections are held."
                    ),
                    code=code,
                    language=language,
                ),
                confidence=0.7,
            )
        )
    return findings
