"""perfpilot.stats."""
