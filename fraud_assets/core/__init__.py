"""Pure fraud-detection core: data schema, features, training, scoring, drift.

Nothing in this package imports Dagster, so the command line, the HTTP service and the
Dagster definitions all share one implementation that can be tested on its own.
"""
