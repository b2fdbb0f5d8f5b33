"""Example perago task modules, one task per module (used by the README, tests and demo)."""
