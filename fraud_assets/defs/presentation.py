"""Metadata that reads well in the Dagster UI: small Markdown tables and an SVG chart."""

import base64
from collections.abc import Iterable, Sequence

import dagster as dg


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def confusion_matrix_markdown(matrix: dict) -> dg.MetadataValue:
    return markdown_table(
        ["", "predicted genuine", "predicted fraud"],
        [["actual genuine", matrix["tn"], matrix["fp"]], ["actual fraud", matrix["fn"], matrix["tp"]]],
    )


def precision_recall_chart(points: Sequence[tuple[float, float]], title: str) -> dg.MetadataValue:
    """An inline SVG line chart (recall on x, precision on y); the UI renders Markdown images,
    and SVG needs no plotting library."""
    width, height, pad = 360, 260, 36
    plot_w, plot_h = width - 2 * pad, height - 2 * pad
    coords = " ".join(
        f"{pad + recall * plot_w:.1f},{pad + (1 - precision) * plot_h:.1f}"
        for recall, precision in points
    )
    ticks = "".join(
        f'<text x="{pad + v * plot_w:.0f}" y="{height - 12}" font-size="10" text-anchor="middle">{v:.1f}</text>'
        f'<text x="{pad - 6}" y="{pad + (1 - v) * plot_h + 3:.0f}" font-size="10" text-anchor="end">{v:.1f}</text>'
        for v in (0.0, 0.5, 1.0)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<rect x="{pad}" y="{pad}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
        f'<polyline points="{coords}" fill="none" stroke="#4f43dd" stroke-width="2"/>'
        f'<text x="{width / 2}" y="18" font-size="12" text-anchor="middle">{title}</text>'
        f'<text x="{width / 2}" y="{height - 1}" font-size="10" text-anchor="middle">recall</text>'
        f"{ticks}</svg>"
    )
    encoded = base64.b64encode(svg.encode()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/svg+xml;base64,{encoded})")
