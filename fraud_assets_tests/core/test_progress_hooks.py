"""The core's progress hooks: ``on_rows`` hears every row read, scored and written, chunk by
chunk; ``on_round`` hears every boosting round. The figures are the work's own, not estimates."""

from __future__ import annotations

from fraud_assets.core.data.features import fit_preprocessor
from fraud_assets.core.data.tables import iter_transaction_chunks, read_transactions, write_table
from fraud_assets.core.model.scoring import score_file
from fraud_assets.core.model.training import train_fraud_model


def test_rows_are_reported_chunk_by_chunk_when_reading_and_writing(batch_frame, tmp_path):
    for name in ("batch.csv", "batch.parquet"):
        written: list[int] = []
        write_table(batch_frame, str(tmp_path / name), on_rows=written.append)
        assert sum(written) == len(batch_frame)

    read: list[int] = []
    chunks = list(iter_transaction_chunks(str(tmp_path / "batch.csv"), chunk_rows=1_200, on_rows=read.append))
    assert read == [len(chunk) for chunk in chunks] == [1_200, 1_200, 1_200, 1_200, 200]

    whole: list[int] = []
    frame = read_transactions(str(tmp_path / "batch.parquet"), require_label=False, on_rows=whole.append)
    assert sum(whole) == len(frame) == len(batch_frame)


def test_scoring_reports_each_chunk_once_written(trained_model, batch_frame, tmp_path):
    write_table(batch_frame, str(tmp_path / "batch.csv"))
    scored: list[int] = []
    written_so_far: list[bool] = []

    def on_rows(rows: int) -> None:
        scored.append(rows)
        written_so_far.append(not (tmp_path / "out.parquet").exists())  # still the temporary

    stats = score_file(trained_model, str(tmp_path / "batch.csv"), str(tmp_path / "out.parquet"),
                       chunk_rows=2_000, on_rows=on_rows)
    assert scored == [2_000, 2_000, 1_000] and stats.rows == sum(scored)
    assert all(written_so_far)


def test_training_reports_every_boosting_round(time_splits, fast_config):
    rounds: list[tuple[int, int]] = []
    model = train_fraud_model(time_splits, fit_preprocessor(time_splits.train), fast_config,
                              on_round=lambda done, most: rounds.append((done, most)))
    best = model.manifest["training"]["best_iteration"]
    done = [d for d, _ in rounds]
    assert done == list(range(1, len(done) + 1))
    assert {most for _, most in rounds} == {fast_config.n_estimators}
    # Early stopping ran past the best round by its patience, unless the cap came first.
    assert len(done) == min(best + 1 + fast_config.early_stopping_rounds, fast_config.n_estimators)
