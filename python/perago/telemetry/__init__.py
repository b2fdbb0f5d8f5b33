"""Metrics and traces of the runtime (OpenTelemetry): settings, providers, the attempt observer."""
