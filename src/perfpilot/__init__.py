"""perfpilot: local-first performance engineering for Python web services.

Load-test from Python::

    from perfpilot import load_scenario, run_load

    plan = load_scenario("checkout.toml", base_url="http://127.0.0.1:8000")
    result = run_load(plan, processes=1)
    print(result.totals().latency.percentile(95))

Monitor an app from inside: ``app = perfpilot.instrument(app)``, then
``perfpilot.unit("listing")`` and ``perfpilot.cache_event("thumbs", hit=True)``
in request code, and ``perfpilot.metrics_app()`` for Prometheus.

Importing ``perfpilot`` loads only the standard library: the names below are
imported on first use, so code that runs inside an application stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Histogram",
    "LoadPlan",
    "LoadResult",
    "__version__",
    "cache_event",
    "instrument",
    "load_scenario",
    "merge_results",
    "metrics_app",
    "plan_from_url",
    "run_load",
    "unit",
]

_LAZY = {
    "Histogram": "perfpilot.stats.histogram",
    "cache_event": "perfpilot.instrument",
    "instrument": "perfpilot.instrument",
    "metrics_app": "perfpilot.instrument",
    "unit": "perfpilot.instrument",
    "LoadPlan": "perfpilot.load.plan",
    "LoadResult": "perfpilot.records",
    "load_scenario": "perfpilot.load.scenario",
    "merge_results": "perfpilot.records",
    "plan_from_url": "perfpilot.load.scenario",
    "run_load": "perfpilot.load.runner",
}

if TYPE_CHECKING:
    from perfpilot.instrument import cache_event, instrument, metrics_app, unit
    from perfpilot.load.plan import LoadPlan
    from perfpilot.load.runner import run_load
    from perfpilot.load.scenario import load_scenario, plan_from_url
    from perfpilot.records import LoadResult, merge_results
    from perfpilot.stats.histogram import Histogram


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfpilot' has no attribute {name!r}")
    if name == "instrument":
        # the package module itself, which is callable: perfpilot.instrument(app)
        # and perfpilot.instrument.unit(...) both keep working
        return importlib.import_module(module)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once; later lookups are plain attributes
    return value
