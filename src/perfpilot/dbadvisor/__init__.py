"""The database advisor: index advice with what-if costing, health checks, query hints.

Import the entry points from their modules (for example
:func:`perfpilot.dbadvisor.health.check_health`); importing this package loads
nothing else.
"""
