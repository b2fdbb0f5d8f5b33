"""Fenced publication of a workspace change (SPEC §5.4, protocol v2; docs/adr/0007).

``decision`` is the pure rule table, ``publisher`` the thin lakeFS/Conductor adapter around it,
``guard`` stops branch moves once an attempt's end is decided, ``faults`` holds named fault
points for the deterministic fault tests. Importing this package loads none of the SDKs.
"""
