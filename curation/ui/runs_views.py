"""The Runs tab's display values: the runs table, an evaluation's progress, two runs' deltas and their answers side
by side, and the curve of a score against the data trained on. User and model text escaped."""
from __future__ import annotations

import html
import pandas as pd
import plotly.graph_objects as go

from curation import selection as rules
from curation.ui.diversity_plots import _layout, empty_figure

METRIC_LABELS = {
    "loss": "Test loss", "perplexity": "Test perplexity", "rouge_l": "ROUGE-L", "exact_match": "Exact match",
    "base_loss": "Base model's test loss", "base_perplexity": "Base model's perplexity",
    "base_rouge_l": "Base model's ROUGE-L", "base_exact_match": "Base model's exact match",
    "win_rate_vs_base": "Win rate against the base model", "lc_win_rate_vs_base": "… length-controlled",
    "win_rate_vs_reference": "Win rate against the reference", "lc_win_rate_vs_reference": "… length-controlled",
}
TABLE_SCORES = ("loss", "rouge_l", "win_rate_vs_base", "lc_win_rate_vs_base")
CURVE_X = {"Training records": "training_records", "Tokens trained": "tokens_trained"}


def metric_label(name: str) -> str:
    if name.startswith("harness:"):
        _, task, metric = name.split(":", 2)
        return f"{task} · {metric} (harness)"
    return METRIC_LABELS.get(name, name)


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def trained_on(row) -> str:
    """What the run was trained on, in words: a selection's recipe or the whole published dataset."""
    config = row.dataset_config or ""
    recipe = row.selection_recipe
    if recipe and recipe.get("missing"):
        return f"selection {config} (its recipe is no longer stored)"
    if recipe:
        return f"selection {config}: {rules.describe_recipe(recipe)}"
    return f"everything ({config or 'default config'})"


def short_model(name: str | None) -> str:
    """A Hub id as it is; a local folder by its last two parts (the whole path would fill the table)."""
    if not name:
        return ""
    parts = name.rstrip("/").split("/")
    return name if len(parts) <= 2 else "…/" + "/".join(parts[-2:])


def runs_frame(rows) -> pd.DataFrame:
    columns = ["Run", "Dataset", "Revision", "Trained on", "Base model", "Method", "Records", "Tokens", "Time",
               "Status", *[metric_label(n) for n in TABLE_SCORES]]
    data = []
    for r in rows:
        data.append([r.job_id, r.dataset or r.dataset_repo or "", (r.dataset_revision or "")[:10], trained_on(r),
                     short_model(r.base_model), r.method or "", _number(r.training_records), _number(r.tokens_trained),
                     "—" if r.seconds is None else f"{r.seconds:,.0f} s", r.status,
                     *[_number(r.scores.get(n)) for n in TABLE_SCORES]])
    return pd.DataFrame(data, columns=columns)


def run_choices(rows) -> list[tuple[str, str]]:
    return [(f"Run {r.job_id} · {r.dataset or r.dataset_repo} · {trained_on(r)[:60]} · {r.status}", str(r.job_id))
            for r in rows]


def evaluation_line(evaluation) -> str:
    """An evaluation's state in one line: stage and count while it runs, the message when it ends."""
    if evaluation is None:
        return "No evaluation yet."
    progress = evaluation.progress or {}
    stage = progress.get("stage")
    where = ""
    if stage and evaluation.status.value in ("queued", "running"):
        done, total = progress.get("done"), progress.get("total")
        where = f" · {html.escape(str(stage))}" + (f" {done:,} of {total:,}" if total else "")
    message = f" · {html.escape(evaluation.message)}" if evaluation.message else ""
    return (f"**Evaluation {evaluation.id}** of `{html.escape(evaluation.model)}` — "
            f"**{evaluation.status.value}**{where}{message}")


def progress_share(evaluation) -> float:
    progress = (evaluation.progress or {}) if evaluation is not None else {}
    total = progress.get("total") or 0
    return min(1.0, (progress.get("done") or 0) / total) if total else 0.0


def deltas_frame(comparison) -> pd.DataFrame:
    a, b = comparison.a.job_id, comparison.b.job_id
    rows = [[metric_label(m.name), _number(m.a), _number(m.b),
             "—" if m.delta is None else f"{m.delta:+.4g}",
             {"a": f"run {a}", "b": f"run {b}"}.get(m.better, "")] for m in comparison.metrics]
    return pd.DataFrame(rows, columns=["Metric", f"Run {a}", f"Run {b}", f"Δ (run {b} − run {a})", "Better"])


def _opener(record_id: int, similarity: float) -> str:
    return (f'<button type="button" class="dv-open" data-open-record="{int(record_id)}" '
            f'title="similarity {similarity:.2f}">#{int(record_id)}</button>')


def side_by_side_html(comparison, nearest: list[list[tuple[int, float]]] | None = None) -> str:
    """The prompts where the two runs differ most, both answers beside the reference; the nearest training
    records of each prompt open in the editor."""
    if comparison.note and not comparison.differing:
        return f'<div class="dv-empty">{html.escape(comparison.note)}.</div>'
    a, b = comparison.a.job_id, comparison.b.job_id
    parts = []
    for n, pair in enumerate(comparison.differing):
        def score(rouge, preference):
            judged = "" if preference is None else f" · judge {preference:.2g} vs base"
            return f"ROUGE-L {_number(rouge)}{judged}"

        near = (nearest or [])[n] if nearest and n < len(nearest) else []
        links = " ".join(_opener(i, s) for i, s in near) or "—"
        parts.append(
            f'<div class="rv-pair"><div class="rv-prompt"><b>{n + 1}.</b> {html.escape(pair.prompt)}</div>'
            f'<div class="rv-row"><div><div class="dv-quiet">Reference</div>{html.escape(pair.reference or "")}</div>'
            f'<div><div class="dv-quiet">Run {a} · {score(pair.rouge_l_a, pair.preference_a)}</div>'
            f'{html.escape(pair.answer_a or "(no answer)")}</div>'
            f'<div><div class="dv-quiet">Run {b} · {score(pair.rouge_l_b, pair.preference_b)}</div>'
            f'{html.escape(pair.answer_b or "(no answer)")}</div></div>'
            f'<div class="dv-quiet">Nearest training records (click to open): {links}</div></div>')
    note = f'<div class="dv-quiet">{html.escape(comparison.note)}.</div>' if comparison.note else ""
    header = (f'<div class="dv-quiet">{comparison.shared_prompts:,} test prompts answered by both runs; the '
              f'{len(comparison.differing)} where they differ most:</div>')
    return note + header + "".join(parts)


RUNS_CSS = """
.rv-pair { border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 12px; margin: 8px 0; }
.rv-prompt { margin-bottom: 6px; white-space: pre-wrap; }
.rv-row { display: grid; grid-template-columns: 1fr 1.5fr 1.5fr; gap: 12px; white-space: pre-wrap;
          overflow-wrap: anywhere; }
"""


def curve_figure(rows, metric: str, x_label: str) -> go.Figure:
    """A score against the data trained on, one point per evaluated run: the LIMA and AlpaGasus curve."""
    key = CURVE_X.get(x_label, "training_records")
    points = [r for r in rows if r.scores.get(metric) is not None and getattr(r, key) is not None]
    if not points:
        return empty_figure("No evaluated run yet: evaluate a run to see the curve.")
    figure = go.Figure()
    for name, group in (("trained on a selection", [r for r in points if r.selection_recipe]),
                        ("trained on everything", [r for r in points if not r.selection_recipe])):
        if group:
            figure.add_trace(go.Scatter(
                x=[getattr(r, key) for r in group], y=[r.scores[metric] for r in group], mode="markers+text",
                name=name, text=[f"run {r.job_id}" for r in group], textposition="top center",
                marker=dict(size=11), hovertext=[html.escape(trained_on(r)) for r in group]))
    figure.update_xaxes(title=x_label, type="log" if len(points) > 2 else "linear")
    figure.update_yaxes(title=metric_label(metric))
    return _layout(figure, f"{metric_label(metric)} against {x_label.lower()}", 380)


def curve_metrics(rows) -> list[tuple[str, str]]:
    names: dict[str, None] = {}
    for r in rows:
        names.update({n: None for n, v in r.scores.items() if v is not None})
    return [(metric_label(n), n) for n in names] or [(metric_label("loss"), "loss")]
