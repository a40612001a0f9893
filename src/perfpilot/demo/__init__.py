"""perfpilot.demo."""
