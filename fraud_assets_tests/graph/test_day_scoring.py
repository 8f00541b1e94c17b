"""`DayScoring` records a file as scored only when its predictions are where the run can see
them: a Dask worker writing to a folder this process does not share must not cost the file."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from fraud_assets.core.model.file_outcomes import FileOutcome
from fraud_assets.core.model.scoring import ScoringStats
from fraud_assets.core.storage.locations import Location
from fraud_assets.defs.day_scoring import DayScoring
from fraud_assets.defs.resources import DatasetSettings

DAY = "2025-03-04"


class _Context:
    log = logging.getLogger("day-scoring-test")


def test_a_file_whose_predictions_this_run_cannot_see_stays_unrecorded(tmp_path):
    data, predictions = Location(str(tmp_path / "data")), Location(str(tmp_path / "predictions"))
    batch = tmp_path / "data" / "incoming" / f"{DAY}_morning.csv"
    batch.parent.mkdir(parents=True)
    batch.write_text("Time,V1\n")
    scoring = DayScoring(_Context(), data=data, predictions=predictions, dataset=DatasetSettings(), files=None,
                         rescore=False, load_model=lambda: "model")

    def elsewhere(model, files):
        # What a worker with its own disk reports: scored, but the output is not here.
        for number, _ in enumerate(files):
            yield number, FileOutcome(stats=ScoringStats(rows=1, flagged=0, seconds=0.1, model_version="v",
                                                         threshold=0.5))

    with pytest.raises(dg.Failure, match="must share the predictions storage"):
        scoring.run([DAY], elsewhere)
    assert batch.exists()  # not moved to processed/
    assert not list((tmp_path / "predictions").rglob("*.stats.json"))
