"""The typed layer over the Rust engine (``perago._native``): snapshots and change sets,
lakeFS bulk transfers. These modules are the only importers of the native module."""
