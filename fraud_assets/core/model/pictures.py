"""Small pictures for people: the precision-recall curve, a day's score histogram, per-feature
drift. Each comes as a self-contained SVG (hand-written: no plotting library, no browser)
and as a compact text chart.

Why both: Dagster 1.13's UI renders Markdown metadata through react-markdown, whose default
URL filter keeps only http(s), mailto, irc(s) and xmpp links, so a ``data:`` image is
dropped there even though its sanitiser would allow it. A text chart in a code block under
1,000 characters is what the UI shows inline, without a click; the SVG is the picture to
store beside the artefact and open anywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

_W, _H, _PAD = 360, 240, 40
_BLUE, _RED, _GREY, _ORANGE = "#4f43dd", "#d1333c", "#999", "#e08a00"
# Score histogram bins: log-spaced, as nearly all scores of a fraud model sit near zero.
SCORE_EDGES = np.r_[0.0, np.geomspace(1e-5, 1.0, 26)]


def _frame(title: str, x_label: str, y_label: str, body: str) -> str:
    plot_w, plot_h = _W - 2 * _PAD, _H - 2 * _PAD
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="10">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<rect x="{_PAD}" y="{_PAD}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{_GREY}"/>'
        f"{body}"
        f'<text x="{_W / 2}" y="16" font-size="12" text-anchor="middle">{escape(title)}</text>'
        f'<text x="{_W / 2}" y="{_H - 6}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="10" y="{_H / 2}" text-anchor="middle" transform="rotate(-90 10 {_H / 2})">'
        f"{escape(y_label)}</text></svg>"
    )


def _x(fraction: float) -> float:
    return _PAD + fraction * (_W - 2 * _PAD)


def _y(fraction: float) -> float:
    return _H - _PAD - fraction * (_H - 2 * _PAD)


def _unit_ticks() -> str:
    return "".join(
        f'<text x="{_x(v):.0f}" y="{_H - _PAD + 12}" text-anchor="middle">{v:.1f}</text>'
        f'<text x="{_PAD - 4}" y="{_y(v) + 3:.0f}" text-anchor="end">{v:.1f}</text>'
        for v in (0.0, 0.5, 1.0)
    )


def _step_path(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """The curve as average precision reads it: precision holds until recall rises."""
    path, previous = [(0.0, 1.0)], 0.0
    for recall, precision in points:
        if recall > previous:
            path += [(previous, precision), (recall, precision)]
            previous = recall
    return path


def precision_recall_svg(
    points: Sequence[Sequence[float]], at_threshold: Sequence[float] | None, title: str
) -> str:
    """Step-wise curve of (recall, precision) points; the point at the model's threshold
    marked in red."""
    line = " ".join(f"{_x(r):.1f},{_y(p):.1f}" for r, p in _step_path(points))
    body = _unit_ticks() + f'<polyline points="{line}" fill="none" stroke="{_BLUE}" stroke-width="2"/>'
    if at_threshold is not None:
        r, p = at_threshold
        body += (
            f'<circle cx="{_x(r):.1f}" cy="{_y(p):.1f}" r="4" fill="{_RED}"/>'
            f'<text x="{_x(r) - 6:.1f}" y="{_y(p) - 7:.1f}" text-anchor="end" fill="{_RED}">'
            f"threshold: P {p:.2f} R {r:.2f}</text>"
        )
    return _frame(title, "recall", "precision", body)


def _log_unit(value: float, low: float = 1e-4) -> float:
    """0 to 1 on a log axis from ``low`` to 1; values below ``low`` sit on the axis."""
    return max(0.0, math.log10(max(value, low) / low) / -math.log10(low))


def reliability_svg(table: Sequence[Mapping], title: str) -> str:
    """Observed against mean predicted fraud rate per probability bin, both on log axes; the
    diagonal is perfect calibration, and each dot's size grows with its bin's rows."""
    diagonal = f'<line x1="{_x(0)}" y1="{_y(0)}" x2="{_x(1)}" y2="{_y(1)}" stroke="{_GREY}" stroke-dasharray="4 2"/>'
    largest = max((entry["rows"] for entry in table), default=1)
    dots = "".join(
        f'<circle cx="{_x(_log_unit(entry["mean_predicted"])):.1f}" '
        f'cy="{_y(_log_unit(entry["observed_rate"])):.1f}" '
        f'r="{2 + 4 * math.log10(1 + entry["rows"]) / math.log10(1 + largest):.1f}" fill="{_BLUE}"/>'
        for entry in table
    )
    ticks = "".join(
        f'<text x="{_x(_log_unit(v)):.0f}" y="{_H - _PAD + 12}" text-anchor="middle">{v:g}</text>'
        f'<text x="{_PAD - 4}" y="{_y(_log_unit(v)) + 3:.0f}" text-anchor="end">{v:g}</text>'
        for v in (1e-4, 1e-2, 1.0)
    )
    return _frame(title, "mean predicted fraud rate (log)", "observed fraud rate (log)", diagonal + dots + ticks)


def score_histogram(scores_chunks, edges: np.ndarray = SCORE_EDGES) -> np.ndarray:
    """Counts of scores in ``edges`` bins over an iterable of score arrays (streamed)."""
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for scores in scores_chunks:
        positions = np.clip(np.searchsorted(edges, np.asarray(scores), side="right") - 1, 0, len(counts) - 1)
        counts += np.bincount(positions, minlength=len(counts))
    return counts


def _log_position(value: float, edges: np.ndarray) -> float:
    """Where ``value`` sits on the log-scaled axis of the bins, 0 to 1 (the first bin, below
    ``edges[1]``, takes one bin's width)."""
    width = 1.0 / (len(edges) - 1)
    if value <= edges[1]:
        return width * (value / edges[1] if edges[1] > 0 else 0.0)
    inner = math.log(value / edges[1]) / math.log(edges[-1] / edges[1])
    return width + (1 - width) * min(inner, 1.0)


def score_histogram_svg(counts: np.ndarray, threshold: float, title: str, edges: np.ndarray = SCORE_EDGES) -> str:
    """Bars on a log-count scale over log-spaced score bins; the threshold as a red line,
    bars at or above it in red (flagged)."""
    counts = np.asarray(counts)
    heights = np.log10(1 + counts) / max(math.log10(1 + int(counts.max(initial=0))), 1e-9)
    width = (_W - 2 * _PAD) / len(counts)
    bars = "".join(
        f'<rect x="{_PAD + i * width:.1f}" y="{_y(h):.1f}" width="{width - 1:.1f}" '
        f'height="{_y(0) - _y(h):.1f}" fill="{_RED if edges[i] >= threshold else _BLUE}"/>'
        for i, h in enumerate(heights)
        if counts[i]
    )
    line_x = _x(_log_position(threshold, edges))
    marker = (
        f'<line x1="{line_x:.1f}" y1="{_PAD}" x2="{line_x:.1f}" y2="{_H - _PAD}" stroke="{_RED}" '
        f'stroke-dasharray="4 2"/><text x="{line_x - 3:.1f}" y="{_PAD + 10}" text-anchor="end" '
        f'fill="{_RED}">threshold {threshold:.3g}</text>'
    )
    ticks = "".join(
        f'<text x="{_x(_log_position(v, edges)):.0f}" y="{_H - _PAD + 12}" text-anchor="middle">{v:g}</text>'
        for v in (1e-4, 1e-2, 1.0)
    )
    total = int(counts.sum())
    return _frame(title, f"fraud score (log scale), {total} rows", "rows (log scale)", bars + marker + ticks)


def drift_svg(features: Mapping[str, Mapping], psi_moderate: float, psi_major: float, title: str,
              limit: int = 12) -> str:
    """Horizontal PSI bars of the most drifted features, coloured by their level, with the
    moderate and major bounds as lines."""
    ranked = sorted(features.items(), key=lambda item: -item[1]["psi"])[:limit]
    top = max([psi_major * 1.6, *(stats["psi"] for _, stats in ranked)])
    row = (_H - 2 * _PAD) / max(len(ranked), 1)
    colour = {"none": _BLUE, "moderate": _ORANGE, "major": _RED}
    bars = "".join(
        f'<rect x="{_PAD + 20}" y="{_PAD + i * row + 1:.1f}" width="{(stats["psi"] / top) * (_W - 2 * _PAD - 20):.1f}" '
        f'height="{row - 2:.1f}" fill="{colour.get(stats.get("level"), _BLUE)}"/>'
        f'<text x="{_PAD + 16}" y="{_PAD + (i + 0.7) * row:.1f}" text-anchor="end">{escape(name)}</text>'
        for i, (name, stats) in enumerate(ranked)
    )
    bounds = "".join(
        f'<line x1="{_PAD + 20 + bound / top * (_W - 2 * _PAD - 20):.1f}" y1="{_PAD}" '
        f'x2="{_PAD + 20 + bound / top * (_W - 2 * _PAD - 20):.1f}" y2="{_H - _PAD}" stroke="{_GREY}" '
        f'stroke-dasharray="3 3"/><text x="{_PAD + 20 + bound / top * (_W - 2 * _PAD - 20):.1f}" '
        f'y="{_H - _PAD + 12}" text-anchor="middle">{bound:g}</text>'
        for bound in (psi_moderate, psi_major)
    )
    return _frame(title, "PSI (dashed: moderate and major bounds)", "", bars + bounds)


# --- text charts, for the UI's inline Markdown ---------------------------------------------------

_BLOCKS = " ▏▎▍▌▋▊▉█"


def text_bar(value: float, top: float, width: int = 20) -> str:
    """A horizontal bar in eighth-blocks: ``value`` of ``top`` over ``width`` characters."""
    eighths = round(max(min(value / top, 1.0), 0.0) * width * 8) if top > 0 else 0
    return "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")


def precision_recall_text(points: Sequence[Sequence[float]], at_threshold: Sequence[float] | None,
                          columns: int = 10) -> str:
    """Precision at recall 0.1, 0.2, ... 1.0 (the step curve's value there), as bars; the
    threshold's row marked, and its figures on a line of their own (the UI's value column
    is narrow: a long mark beside a bar is cut off)."""
    lines = []
    for k in range(1, columns + 1):
        recall = k / columns
        reached = [p for r, p in points if r >= recall - 1e-9]
        precision = reached[0] if reached else 0.0
        mark = ""
        if at_threshold is not None and recall - 1 / columns < at_threshold[0] <= recall + 1e-9:
            mark = " ◀"
        lines.append(f"R {recall:.1f} P {precision:.2f} {text_bar(precision, 1.0)}{mark}")
    if at_threshold is not None:
        lines.append(f"◀ threshold: P {at_threshold[1]:.2f}, R {at_threshold[0]:.2f}")
    return "\n".join(lines)


def score_histogram_text(counts: np.ndarray, threshold: float, edges: np.ndarray = SCORE_EDGES,
                         groups: int = 8) -> str:
    """Rows per score band (bands of log-spaced bins), log-scaled bars; bands at or above the
    threshold marked as flagged."""
    counts = np.asarray(counts)
    splits = np.linspace(0, len(counts), groups + 1).round().astype(int)
    top = math.log10(1 + int(counts.max(initial=0))) or 1.0
    lines = []
    for start, stop in zip(splits[:-1], splits[1:], strict=True):
        total = int(counts[start:stop].sum())
        flagged = " flagged" if edges[start] >= threshold else ""
        lines.append(f"{edges[start]:<7.1g}-{edges[stop]:<7.1g}{total:>9} {text_bar(math.log10(1 + total), top, 16)}"
                     f"{flagged}")
    return "\n".join(lines) + f"\nthreshold {threshold:.4g}"


def drift_text(features: Mapping[str, Mapping], psi_major: float, limit: int = 8) -> str:
    ranked = sorted(features.items(), key=lambda item: -item[1]["psi"])[:limit]
    top = max([psi_major * 1.6, *(stats["psi"] for _, stats in ranked)])
    return "\n".join(
        f"{name:<7}{stats['psi']:>7.3f} {text_bar(stats['psi'], top, 16):<16} {stats.get('level', '')}"
        for name, stats in ranked
    )
