"""Watching the model in service: drift statistics, Prometheus telemetry and Slack alerts. May import ``data``, ``model`` and ``storage``."""
