"""perfpilot: local-first performance engineering for Python web services.

Load-test with :func:`perfpilot.load.run_load` (or the ``perfpilot load``
command); results are :class:`perfpilot.records.LoadResult`, built on the
mergeable :class:`perfpilot.stats.histogram.Histogram`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
