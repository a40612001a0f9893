"""Pure analysis over records: summaries, breakdowns, detectors. No I/O."""
