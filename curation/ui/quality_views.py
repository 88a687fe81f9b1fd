"""The Quality tab's display values: a score's histogram with the minimum drawn on it, the map coloured by a
score, the selections and what DEITA's rule left out. User text escaped."""
from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from curation import selection as rules
from curation.services.quality_view import NUMERIC_SCORES, Distribution
from curation.ui.diversity_plots import WEBGL_FROM, _hover, _layout, empty_figure


def histogram(distribution: Distribution | None, minimum: float | None) -> go.Figure:
    """The score's histogram; the bars at or above `minimum` in colour, the rest grey, the minimum as a line."""
    if distribution is None or not len(distribution.values):
        return empty_figure("No scores yet: score the dataset above.")
    values = distribution.values
    low, high = float(values.min()), float(values.max())
    # Judge ratings come in whole or half points: one bar per value a rating can take, centred on it.
    unit = next((u for u in (1.0, 0.5) if np.all(values / u == np.round(values / u)) and (high - low) / u <= 20), None)
    figure = go.Figure()
    if unit:
        edges = np.arange(low - unit / 2, high + unit, unit)
    else:
        edges = np.histogram_bin_edges(values, bins=min(40, max(5, int(np.sqrt(len(values))))))
    counts, edges = np.histogram(values, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    kept = centres >= (minimum if minimum is not None else -np.inf)
    figure.add_trace(go.Bar(x=centres, y=counts, width=np.diff(edges) * 0.95, showlegend=False,
                            marker_color=np.where(kept, "#6366f1", "#cbd5e1").tolist(),
                            hovertemplate="%{x:.3g}: %{y:,} records<extra></extra>"))
    if minimum is not None:
        figure.add_vline(x=minimum - (unit / 2 if unit else 0), line_width=2, line_dash="dash", line_color="#ef4444")
    figure.update_xaxes(title=NUMERIC_SCORES.get(distribution.name, distribution.name))
    figure.update_yaxes(title="records")
    return _layout(figure, f"{len(values):,} records scored", 320)


def slider_range(distribution: Distribution | None) -> tuple[float, float, float]:
    """(minimum, maximum, step) of the threshold slider for a score."""
    if distribution is None or not len(distribution.values):
        return 0.0, 5.0, 0.5
    low, high = float(distribution.values.min()), float(distribution.values.max())
    if high <= low:
        high = low + 1
    values = distribution.values
    integer = np.all(values == np.round(values))
    halves = np.all(values * 2 == np.round(values * 2))  # judge ratings: whole and half points
    step = 1.0 if integer and high - low > 5 else 0.5 if halves else float(f"{(high - low) / 100:.2g}")
    return low, high, step


def score_map(report: dict[str, Any] | None, score: str, taken: set[int] | None = None) -> go.Figure:
    """Every live record at its place on the Diversity map, coloured by `score` (grey: not scored); the records
    a selection takes ringed in black."""
    if not report or not report.get("points"):
        return empty_figure("No map yet: press “Draw the map”.", 520)
    points = report["points"]
    scored = [p for p in points if score in p.get("scores", {})]
    unscored = [p for p in points if score not in p.get("scores", {})]
    scatter = go.Scattergl if len(points) > WEBGL_FROM else go.Scatter
    size = 9 if len(points) < 2000 else 5
    figure = go.Figure()
    if unscored:
        figure.add_trace(scatter(x=[p["x"] for p in unscored], y=[p["y"] for p in unscored], mode="markers",
                                 name="not scored", customdata=[[p["id"]] for p in unscored],
                                 hovertext=[_hover(p) for p in unscored], hoverinfo="text",
                                 marker=dict(size=size, color="#cbd5e1")))
    taken = taken or set()
    label = NUMERIC_SCORES.get(score, score)
    figure.add_trace(scatter(
        x=[p["x"] for p in scored], y=[p["y"] for p in scored], mode="markers", name=html.escape(label),
        customdata=[[p["id"]] for p in scored], hoverinfo="text",
        hovertext=[f"{_hover(p)}<br>{html.escape(score)} {p['scores'][score]:.3g}"
                   + (" · <b>selected</b>" if p["id"] in taken else "") for p in scored],
        marker=dict(size=size, color=[p["scores"][score] for p in scored], colorscale="Viridis", showscale=True,
                    colorbar=dict(title=score), opacity=0.9,
                    line=dict(width=[1.6 if p["id"] in taken else 0.3 for p in scored],
                              color=["#111827" if p["id"] in taken else "white" for p in scored]))))
    figure.update_xaxes(showticklabels=False, title=None, zeroline=False)
    figure.update_yaxes(showticklabels=False, title=None, zeroline=False)
    figure.update_layout(hoverlabel=dict(align="left"), clickmode="event", legend=dict(orientation="h"))
    ringed = f" · {len(taken & {p['id'] for p in scored}):,} selected ringed" if taken else ""
    return _layout(figure, f"{len(points):,} records by meaning, coloured by {label.lower()}{ringed}", 560)


def selections_frame(summaries) -> pd.DataFrame:
    columns = ["Name", "Records", "Recipe", "Made by", "When"]
    rows = [{"Name": s.name, "Records": s.size, "Recipe": rules.describe_recipe(s.recipe),
             "Made by": s.created_by or "CLI", "When": s.created_at.replace("T", " ")} for s in summaries]
    return pd.DataFrame(rows, columns=columns)


def left_out_html(rows: list[tuple[int, int, float]], texts: dict[int, str], limit: int = 200) -> str:
    """"left out: too close to #123" for each record DEITA's rule skipped; the ids open the records."""
    if not rows:
        return '<div class="dv-empty">Nothing was left out for being too close to a record already taken.</div>'

    def opener(record_id: int) -> str:
        return f'<button type="button" class="dv-open" data-open-record="{int(record_id)}">#{int(record_id)}</button>'

    lines = [f"<tr><td>{opener(r)}</td><td>left out: too close to {opener(c)}</td><td class='dv-num'>{s:.3f}</td>"
             f"<td>{html.escape(texts.get(r, '')[:120])}</td></tr>" for r, c, s in rows[:limit]]
    more = f'<div class="dv-quiet">… and {len(rows) - limit:,} more</div>' if len(rows) > limit else ""
    return ('<table class="dv-table"><tr><th>Record</th><th>Why</th><th>Similarity</th><th>Instruction</th></tr>'
            + "".join(lines) + "</table>" + more)


def comparison_line(comparison) -> str:
    a, b = comparison.a.name, comparison.b.name
    return (f"`{html.escape(a)}` and `{html.escape(b)}` share **{len(comparison.both):,}** records "
            f"(Jaccard {comparison.jaccard:.2f}); **{len(comparison.only_a):,}** only in `{html.escape(a)}`, "
            f"**{len(comparison.only_b):,}** only in `{html.escape(b)}`.")
