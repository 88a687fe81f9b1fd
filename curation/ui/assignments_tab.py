"""Assignments (curators): split a dataset's work among annotators with an overlap, follow progress, reassign, and
reconcile the answers k annotators gave to the same record, side by side."""
from __future__ import annotations

import html

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from curation.services import assignments as work
from curation.services.annotation import InvalidInput
from curation.ui.context import AppContext
from curation.ui.inputs import WholeNumber
from curation.ui.safe import text_markdown

TAB_TITLE = "Assignments"
TAB_ORDER = 45  # after Review: the other half of a curator's day with a team
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
PROGRESS_COLUMNS = ["Annotator", "Dataset", "Open", "Submitted", "Skipped", "Total", "Done %"]
RECONCILE_COLUMNS = ["Record", "Agreement", "Answers", "Waiting for", "Instruction"]
CSS = """
.answers { display: flex; gap: 10px; flex-wrap: wrap; }
.answer-card { flex: 1 1 260px; border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; }
.answer-card h4 { margin: 0 0 4px 0; font-size: .9rem; }
.answer-card pre { white-space: pre-wrap; margin: 0; font-family: inherit; }
.answer-card .rating { font-size: .8rem; opacity: .75; }
"""


def progress_frame(rows: list[work.Progress]) -> pd.DataFrame:
    return pd.DataFrame([[p.annotator, p.dataset, p.open, p.done, p.skipped, p.total,
                          round(100 * (p.done + p.skipped) / p.total) if p.total else 0] for p in rows],
                        columns=PROGRESS_COLUMNS)


def progress_figure(rows: list[work.Progress]) -> go.Figure:
    names = [f"{p.annotator} · {p.dataset}" for p in rows]
    figure = go.Figure([go.Bar(y=names, x=[getattr(p, key) for p in rows], name=label, orientation="h",
                               marker_color=color)
                        for key, label, color in (("done", "submitted", "#22c55e"), ("skipped", "skipped", "#94a3b8"),
                                                  ("open", "open", "#f59e0b"))])
    figure.update_layout(barmode="stack", height=max(220, 40 + 28 * len(rows)), template="plotly_white",
                         title="Progress per annotator", margin=dict(l=10, r=10, t=40, b=10))
    figure.update_yaxes(autorange="reversed", type="category")
    return figure


def reconcile_frame(items: list[work.ItemAnswers]) -> pd.DataFrame:
    return pd.DataFrame([[i.record_id, "" if i.agreement is None else round(i.agreement, 2), len(i.answers),
                          ", ".join(i.waiting), i.instruction[:120]] for i in items], columns=RECONCILE_COLUMNS)


def answers_html(item: work.ItemAnswers | None) -> str:
    """The answers side by side, with the record's current output first."""
    if item is None:
        return '<div class="hint">Choose a record from the list to see its answers side by side.</div>'
    cards = [f'<div class="answer-card"><h4>Current output</h4><pre>{html.escape(item.current_output)}</pre></div>']
    for name, answer, rating in item.answers:
        rated = f'<div class="rating">rated the current output {rating}/5</div>' if rating is not None else ""
        cards.append(f'<div class="answer-card"><h4>{html.escape(name)}</h4><pre>{html.escape(answer)}</pre>'
                     f"{rated}</div>")
    agreement = "" if item.agreement is None else f" · agreement {item.agreement:.2f} (ROUGE-L)"
    waiting = f" · still waiting for {html.escape(', '.join(item.waiting))}" if item.waiting else ""
    head = (f"<p><b>Record #{item.record_id}</b>{agreement}{waiting}</p><p><b>Instruction:</b> "
            f"{html.escape(item.instruction)}</p>" + (f"<p><b>Input:</b> {html.escape(item.input)}</p>"
                                                      if item.input else ""))
    return f'{head}<div class="answers">{"".join(cards)}</div>'


def build(ctx: AppContext) -> dict:
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(label="Dataset", choices=[], scale=2, allow_custom_value=True,
                              elem_id="assign-dataset")
        refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="assign-refresh")
    with gr.Accordion("Split the work", open=True):
        with gr.Row(equal_height=True):
            kind = gr.Radio([("Records", "record"), ("Tasks", "task")], value="record", label="Items", scale=1,
                            elem_id="assign-kind")
            people = gr.Dropdown(label="Annotators", choices=[], multiselect=True, scale=3,
                                 elem_id="assign-annotators")
            overlap = WholeNumber(label="Annotators per item (overlap)", value=1, minimum=1, precision=0, scale=1,
                                  elem_id="assign-overlap",
                                  info="2 or more to measure agreement; their answers stay independent")
            split = gr.Button("Split the unassigned items", variant="primary", scale=1, elem_id="assign-split")
        split_result = gr.Markdown(elem_id="assign-split-result")
    with gr.Accordion("Progress", open=True):
        with gr.Row():
            progress_table = gr.Dataframe(interactive=False, elem_id="assign-progress", scale=3)
            progress_plot = gr.Plot(show_label=False, elem_id="assign-progress-plot", scale=2)
        with gr.Row(equal_height=True):
            move_from = gr.Dropdown(label="Move the open items of", choices=[], scale=2, elem_id="assign-from")
            move_to = gr.Dropdown(label="to", choices=[], scale=2, elem_id="assign-to")
            move = gr.Button("Reassign", scale=1, elem_id="assign-move")
        move_result = gr.Markdown(elem_id="assign-move-result")
    with gr.Accordion("Reconcile overlapping answers", open=True):
        waiting = gr.Checkbox(label="Include records whose answers are not all in", value=False,
                              elem_id="reconcile-waiting")
        items_state = gr.State([])
        reconcile_table = gr.Dataframe(interactive=False, elem_id="reconcile-table", max_height=320)
        gr.Markdown("The least agreed first. Click a row to compare its answers.", elem_classes=["hint"])
        chosen = gr.Number(visible=False, precision=0, label="record")
        side_by_side = gr.HTML(answers_html(None), elem_id="reconcile-answers", css_template=CSS)
        with gr.Row(equal_height=True):
            keep_from = gr.Dropdown(label="Keep the answer of", choices=[], scale=2, elem_id="reconcile-keep-from")
            keep = gr.Button("Keep it", scale=1, elem_id="reconcile-keep")
        merged = gr.Textbox(label="Or merge them / write a new output", lines=4, elem_id="reconcile-merged")
        with gr.Row():
            save_merged = gr.Button("Save as merged", elem_id="reconcile-save-merged")
            save_new = gr.Button("Save as a new output", elem_id="reconcile-save-new")
        reconcile_result = gr.Markdown(elem_id="reconcile-result")

    def need_dataset(dataset_v) -> str:
        if not dataset_v:
            raise InvalidInput("choose a dataset")
        return dataset_v

    @ctx.friendly
    def assign_progress(dataset_v, request: gr.Request):
        """Open, submitted and skipped items per annotator (in the chosen dataset, or all)."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            rows = work.progress(session, actor, dataset=dataset_v or None)
        return progress_frame(rows), progress_figure(rows)

    @ctx.friendly
    def assign_split(dataset_v, kind_v, people_v, overlap_v, request: gr.Request):
        """Split the dataset's unassigned items evenly among the annotators, `overlap` annotators per item."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            done = work.split_evenly(session, actor, dataset=need_dataset(dataset_v), annotators=list(people_v or []),
                                     item_type=kind_v or "record", overlap=int(overlap_v or 1))
            session.commit()
        gr.Info(done.summary())
        return text_markdown(done.summary())

    @ctx.friendly
    def assign_move(dataset_v, from_v, to_v, request: gr.Request):
        """Move one annotator's open items in the dataset to another."""
        actor = ctx.actor(request)
        if not from_v or not to_v:
            raise InvalidInput("choose whose items move, and to whom")
        with ctx.session() as session:
            moved = work.reassign(session, actor, dataset=need_dataset(dataset_v), from_annotator=from_v,
                                  to_annotator=to_v)
            session.commit()
        return text_markdown(f"Moved {moved:,} open item{'s' * (moved != 1)} from {from_v} to {to_v}.")

    @ctx.friendly
    def reconcile_list(dataset_v, waiting_v, request: gr.Request):
        """The records with answers to reconcile, the least agreed first."""
        actor = ctx.actor(request)
        if not dataset_v:
            return reconcile_frame([]), [], None, answers_html(None), gr.update(choices=[]), ""
        with ctx.session() as session:
            items = work.answers_to_reconcile(session, actor, dataset=dataset_v, include_waiting=bool(waiting_v))
        first = items[0] if items else None
        return (reconcile_frame(items), items, first.record_id if first else None, answers_html(first),
                gr.update(choices=[name for name, _, _ in first.answers] if first else [], value=None),
                first.answers[0][1] if first else "")

    @ctx.friendly
    def reconcile_pick(items, event: gr.SelectData, request: gr.Request):
        ctx.actor(request)
        row = event.row_value or []
        found = next((i for i in items or [] if row and i.record_id == int(row[0])), None)
        if found is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (found.record_id, answers_html(found), gr.update(choices=[n for n, _, _ in found.answers], value=None),
                found.answers[0][1] if found.answers else "")

    def reconcile_with(how_of):
        @ctx.friendly
        def handler(items, record_v, keep_v, merged_v, request: gr.Request):
            actor = ctx.actor(request)
            item = next((i for i in items or [] if record_v not in (None, "") and i.record_id == int(record_v)), None)
            if item is None:
                raise InvalidInput("choose a record from the list first")
            output, how = how_of(item, keep_v, merged_v)
            with ctx.session() as session:
                version = work.reconcile(session, actor, record_id=item.record_id, output=output, how=how,
                                         expected_version=item.version)
                session.commit()
            return text_markdown(f"Record #{item.record_id} is now version {version}: {how}.")
        return handler

    def kept(item, keep_v, merged_v):
        answer = next((a for name, a, _ in item.answers if name == keep_v), None)
        if answer is None:
            raise InvalidInput("choose whose answer to keep")
        return answer, f"kept {keep_v}'s answer"

    reconcile_keep = reconcile_with(kept)
    reconcile_merged = reconcile_with(lambda item, keep_v, merged_v: (merged_v, "merged them"))
    reconcile_new = reconcile_with(lambda item, keep_v, merged_v: (merged_v, "wrote a new one"))

    @ctx.friendly
    def on_load(request: gr.Request):
        actor = ctx.actor(request)
        if not actor.reviews:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        with ctx.session() as session:
            names = work.annotators(session, actor)
        datasets = ctx.datasets()
        return (gr.update(choices=datasets, value=datasets[0] if datasets else None), gr.update(choices=names),
                gr.update(choices=names), gr.update(choices=names))

    private = dict(api_visibility="private", show_progress="hidden")
    shown_progress = ([dataset], [progress_table, progress_plot])
    listed = ([dataset, waiting], [reconcile_table, items_state, chosen, side_by_side, keep_from, merged])
    refresh.click(assign_progress, *shown_progress, api_name="assign_progress", show_progress="hidden")
    split.click(assign_split, [dataset, kind, people, overlap], [split_result], api_name="assign_split",
                show_progress="hidden").success(assign_progress, *shown_progress, **private)
    move.click(assign_move, [dataset, move_from, move_to], [move_result], api_name="assign_move",
               show_progress="hidden").success(assign_progress, *shown_progress, **private)
    refresh.click(reconcile_list, *listed, **private)
    dataset.input(assign_progress, *shown_progress, **private)
    dataset.input(reconcile_list, *listed, **private)
    waiting.input(reconcile_list, *listed, **private)
    reconcile_table.select(reconcile_pick, [items_state], [chosen, side_by_side, keep_from, merged], **private)
    keep_from.input(lambda items, record_v, name: next((a for i in items or [] if i.record_id == record_v
                                                        for n, a, _ in i.answers if n == name), gr.skip()),
                    [items_state, chosen, keep_from], [merged], **private)
    for button, handler, name in ((keep, reconcile_keep, "reconcile_keep"), (save_merged, reconcile_merged, None),
                                  (save_new, reconcile_new, None)):
        button.click(handler, [items_state, chosen, keep_from, merged], [reconcile_result],
                     show_progress="hidden", **({"api_name": name} if name else {"api_visibility": "private"})
                     ).success(reconcile_list, *listed, **private)
    ctx.on_load(on_load, None, [dataset, people, move_from, move_to])
    if ctx.tab is not None:
        ctx.tab.select(assign_progress, *shown_progress, **private)
        ctx.tab.select(reconcile_list, *listed, **private)
    return {}
