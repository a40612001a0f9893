"""perfpilot.load."""
