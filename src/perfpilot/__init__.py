"""perfpilot: local-first performance engineering for Python web services.

Load-test from Python::

    from perfpilot import load_scenario, run_load

    plan = load_scenario("checkout.toml", base_url="http://127.0.0.1:8000")
    result = run_load(plan, processes=1)
    print(result.totals().latency.percentile(95))

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
    "load_scenario",
    "merge_results",
    "plan_from_url",
    "run_load",
]

_LAZY = {
    "Histogram": "perfpilot.stats.histogram",
    "LoadPlan": "perfpilot.load.plan",
    "LoadResult": "perfpilot.records",
    "load_scenario": "perfpilot.load.scenario",
    "merge_results": "perfpilot.records",
    "plan_from_url": "perfpilot.load.scenario",
    "run_load": "perfpilot.load.runner",
}

if TYPE_CHECKING:
    from perfpilot.load.plan import LoadPlan
    from perfpilot.load.runner import run_load
    from perfpilot.load.scenario import load_scenario, plan_from_url
    from perfpilot.records import LoadResult, merge_results
    from perfpilot.stats.histogram import Histogram


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfpilot' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
