"""Training and bulk scoring on a Dask cluster (``FRAUD_DASK_SCHEDULER``).

Imported only when a scheduler is configured: every module here but ``errors`` imports Dask. The workers
read the data themselves; this process plans, gathers small summaries and writes the bundle.
"""
