"""``python -m perfpilot``."""

from perfpilot.cli.main import run

run()
