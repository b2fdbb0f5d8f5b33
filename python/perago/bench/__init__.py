"""perago bench: benchmark scenarios (never part of the pass/fail test suite)."""
