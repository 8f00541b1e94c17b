"""Metadata that reads well in the Dagster UI: small Markdown tables and inline charts."""

from collections.abc import Iterable, Sequence

import dagster as dg
import pyarrow.parquet as pq

from fraud_assets.core.model import pictures
from fraud_assets.core.storage.locations import Location, write_bytes_atomic


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def confusion_matrix_markdown(matrix: dict) -> dg.MetadataValue:
    return markdown_table(
        ["", "predicted genuine", "predicted fraud"],
        [["actual genuine", matrix["tn"], matrix["fp"]], ["actual fraud", matrix["fn"], matrix["tp"]]],
    )


def text_chart(text: str) -> dg.MetadataValue:
    """A text chart in a code block. The UI shows Markdown under 1,000 characters inline
    and drops ``data:`` images (see :mod:`fraud_assets.core.model.pictures`)."""
    return dg.MetadataValue.md(f"```\n{text}\n```")


def precision_recall_chart(
    points: Sequence[Sequence[float]], at_threshold: Sequence[float] | None
) -> dg.MetadataValue:
    return text_chart(pictures.precision_recall_text(points, at_threshold))


def score_histogram_chart(predictions: Location, day: str, threshold: float) -> dg.MetadataValue:
    """The day's scores (every predictions file of the day) by band, inline; the SVG picture
    is written beside the predictions as ``score_histogram.svg``."""
    folder = predictions.path(f"date={day}")
    files = sorted(path for path in predictions.fs.find(folder) if path.endswith(".parquet"))
    counts = pictures.score_histogram(
        scores for path in files for scores in _scores(predictions, path)
    )
    svg = pictures.score_histogram_svg(counts, threshold, f"Fraud scores, {day}")
    write_bytes_atomic(predictions.fs, predictions.path(f"date={day}", "score_histogram.svg"), svg.encode())
    return text_chart(pictures.score_histogram_text(counts, threshold))


def drift_chart(report: dict) -> dg.MetadataValue:
    return text_chart(pictures.drift_text(report["features"], report["thresholds"]["psi_major"]))


def _scores(predictions: Location, path: str):
    with predictions.fs.open(path, "rb") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(columns=["fraud_probability"]):
            yield batch.column(0).to_numpy()
