"""Facts about this host and its processes that every layer needs: process identity and
liveness, and private (0600/0700) files written without races."""
