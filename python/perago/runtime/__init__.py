"""Running workers on a host: configuration, the worker and its supervisor, logs, process
identity, private files and the workspace GC."""
