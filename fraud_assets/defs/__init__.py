"""Dagster definitions: thin wiring over :mod:`fraud_assets.core`, one module per concern."""

import warnings

import dagster as dg

# These features are chosen knowingly (a check per daily partition, single-run backfills of
# a day range, data versions that skip unchanged retraining) and the pinned Dagster is tested
# with them: without these filters, every `dg dev`, run and `fraud demo` repeats the notice.
# Other beta or preview features still warn.
for _category, _message in (
    (dg.PreviewWarning, r"Specifying a partitions_def on an AssetCheckSpec"),
    (dg.BetaWarning, r"Parameter `backfill_policy`"),
    (dg.BetaWarning, r"Parameter `data_version`"),
):
    warnings.filterwarnings("ignore", message=_message, category=_category)
# fraud_pipeline_job mixes daily_predictions (a backfill is one run) with assets backfilled a
# day per run; a job running a day at a time is what it is for, so Dagster's choice of the
# day-per-run policy for it is the intended one.
warnings.filterwarnings("ignore", message=r"Asset job fraud_pipeline_job materializes assets with varying",
                        category=UserWarning)
