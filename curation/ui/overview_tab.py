"""Overview: counts by status, category, author, day, quality flag and who wrote the records, as plots."""
from __future__ import annotations

import gradio as gr
import plotly.graph_objects as go

from curation import stats
from curation.services import assignments, review
from curation.services.permissions import authorize
from curation.ui.context import AppContext
from curation.ui.safe import text_markdown

TAB_TITLE = "Overview"
TAB_ORDER = 50
STATUS_COLORS = {"draft": "#94a3b8", "submitted": "#f59e0b", "approved": "#22c55e", "rejected": "#ef4444",
                 "discarded": "#6b7280"}


def _bar(title: str, labels: list[str], values: list[int], *, horizontal: bool = False,
         colors: list[str] | None = None) -> go.Figure:
    # A lone bar would fill the plot: cap the width, and print each count on its bar.
    width = 0.5 if len(labels) <= 3 else None
    common = dict(marker_color=colors or "#6366f1", width=width, textposition="auto", cliponaxis=False)
    bar = (go.Bar(y=labels, x=values, orientation="h", text=values, **common) if horizontal
           else go.Bar(x=labels, y=values, text=values, **common))
    figure = go.Figure(bar)
    figure.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                         bargap=0.35)
    # Labels are categories (a day is a label too), and horizontal bars read top-down, largest first.
    figure.update_xaxes(type="category") if not horizontal else figure.update_yaxes(type="category",
                                                                                    autorange="reversed")
    return figure


def figures(counts: review.Overview) -> tuple[go.Figure, go.Figure, go.Figure, go.Figure, str, go.Figure]:
    statuses = [s for s in STATUS_COLORS if s in counts.by_status]
    total = sum(counts.by_status.values())
    tasks = sum(counts.tasks_by_status.values())
    summary = (f"**{total:,}** records · **{tasks:,}** tasks · "
               + " · ".join(f"{s} **{counts.by_status[s]:,}**" for s in statuses))
    return (
        _bar("Records by status", statuses, [counts.by_status[s] for s in statuses],
             colors=[STATUS_COLORS[s] for s in statuses]),
        _bar("Top categories", [c for c, _ in counts.by_category], [n for _, n in counts.by_category],
             horizontal=True),
        _bar("Records by author", [a for a, _ in counts.by_author], [n for _, n in counts.by_author],
             horizontal=True),
        _bar("Records by day of last change", [d for d, _ in counts.by_day], [n for _, n in counts.by_day]),
        summary,
        # Every check is shown, a 0 included: that a check found nothing is worth seeing too.
        _bar("Records with each quality flag (not discarded)", [name.replace("_", " ") for name in counts.flags],
             list(counts.flags.values()), horizontal=True, colors=["#f97316"] * len(counts.flags)),
    )


def written_by_figure(counts: dict[str, int], models: dict[str, int]) -> tuple[go.Figure, str]:
    """The bar of records by who wrote them (curation.stats.written_by), and a line naming the models."""
    shown = {stats.WRITTEN_BY[key]: n for key, n in counts.items() if n or key != "generated"}
    line = ("Models that drafted text: " + " · ".join(f"{model} **{n:,}**" for model, n in models.items())
            if models else "No text here was drafted by a model.")
    return _bar("Records by who wrote them", list(shown), list(shown.values()), horizontal=True,
                colors=["#0ea5e9"] * len(shown)), line


def agreement_markdown(report: assignments.AgreementReport) -> str:
    """The agreement line, the annotators' own figures, and the least agreed records (to reconcile first)."""
    lines = [text_markdown(report.summary())]
    if report.per_annotator:
        lines += ["", "| Annotator | Agreement with the others |", "|---|---|"]
        lines += [f"| {text_markdown(name)} | {score:.2f} |" for name, score in report.per_annotator.items()]
    if report.lowest:
        lines += ["", "Least agreed: " + ", ".join(f"#{item} ({score:.2f})" for item, score in report.lowest)
                  + " · reconcile them in Assignments."]
    return "\n".join(lines)


def build(ctx: AppContext) -> dict:
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[("All datasets", "")], value="", scale=3,
                              allow_custom_value=True, elem_id="overview-dataset")
        refresh = gr.Button("Refresh", scale=1, elem_id="overview-refresh")
    summary = gr.Markdown(elem_id="overview-summary")
    with gr.Row():
        by_status = gr.Plot(show_label=False)
        by_category = gr.Plot(show_label=False)
    with gr.Row():
        by_author = gr.Plot(show_label=False)
        by_day = gr.Plot(show_label=False)
    with gr.Row():
        by_flag = gr.Plot(show_label=False, elem_id="overview-flags")
        with gr.Column():
            by_writer = gr.Plot(show_label=False, elem_id="overview-written-by")
            models = gr.Markdown(elem_id="overview-models")
    with gr.Accordion("Agreement between annotators", open=True, elem_id="overview-agreement-box"):
        agreement = gr.Markdown("Choose a dataset to see how much its annotators agree.",
                                elem_id="overview-agreement")

    @ctx.friendly
    def overview(dataset, request: gr.Request):
        """Counts by status, category, author, day and quality flag of a dataset (empty: all), as plots and a line."""
        authorize(ctx.actor(request), "view")
        with ctx.session() as session:
            counts = review.overview(session, dataset=dataset or None)
        return figures(counts)

    @ctx.friendly
    def written_by(dataset, request: gr.Request):
        """Records of a dataset (empty: all) by who wrote them, as a plot, and the models that drafted text."""
        authorize(ctx.actor(request), "view")
        with ctx.session() as session:
            counts = stats.written_by(session, dataset=dataset or None)
            used = stats.model_counts(session, dataset=dataset or None)
        return written_by_figure(counts, used)

    @ctx.friendly
    def overview_agreement(dataset, request: gr.Request):
        """How much the annotators agree on a dataset's overlapping answers: per item and per annotator."""
        authorize(ctx.actor(request), "view")
        if not dataset:
            return "Choose a dataset to see how much its annotators agree."
        with ctx.session() as session:
            report = assignments.agreement_report(session, dataset=dataset)
        return agreement_markdown(report)

    @ctx.friendly
    def on_load(request: gr.Request):
        ctx.actor(request)
        return gr.update(choices=[("All datasets", "")] + [(d, d) for d in ctx.datasets()])

    outputs = [by_status, by_category, by_author, by_day, summary, by_flag]
    # A listener of its own, so that /overview still answers its six values to the scripts that call it.
    writer_outputs = [by_writer, models]
    refresh.click(overview, [dataset], outputs, api_name="overview")
    refresh.click(written_by, [dataset], writer_outputs, api_name="overview_written_by")
    dataset.input(overview, [dataset], outputs, api_visibility="private")
    dataset.input(written_by, [dataset], writer_outputs, api_visibility="private")
    refresh.click(overview_agreement, [dataset], [agreement], api_name="overview_agreement")
    dataset.input(overview_agreement, [dataset], [agreement], api_visibility="private")
    ctx.on_load(on_load, None, [dataset])
    # Counting every record takes a moment at 100k: done when the tab is opened, not on every page load.
    if ctx.tab is not None:
        ctx.tab.select(overview, [dataset], outputs, api_visibility="private")
        ctx.tab.select(written_by, [dataset], writer_outputs, api_visibility="private")
    return {}
