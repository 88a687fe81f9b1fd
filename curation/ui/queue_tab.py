"""My queue: the records and tasks a curator gave to the signed-in annotator, worked through one at a time.

The loop is the keyboard's: Alt+N the next open item, Alt+P the previous one, Ctrl+S save, Ctrl+Enter submit (and
open the next), Alt+K skip (curation/ui/assets/shortcuts.html).
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from curation.services import assignments as work
from curation.services.annotation import InvalidInput
from curation.ui.context import AppContext, open_item
from curation.ui.guidelines_panel import attach_guidelines_panel
from curation.ui.safe import text_markdown

TAB_TITLE = "My queue"
TAB_ORDER = 15  # right after Browse: it is where an annotator's day starts
COLUMNS = ["Assignment", "Dataset", "Kind", "Item", "Status", "What"]
RATINGS = [("no rating", ""), ("1 poor", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 excellent", "5")]
STATUS_WORDS = {"open": "open", "done": "submitted", "skipped": "skipped"}


def queue_frame(items: list[work.QueueItem]) -> pd.DataFrame:
    return pd.DataFrame([[q.assignment_id, q.dataset, q.item_type, q.item_id, STATUS_WORDS[q.status], q.title]
                         for q in items], columns=COLUMNS)


def progress_line(items: list[work.QueueItem]) -> str:
    if not items:
        return "Nothing is assigned to you yet: a curator assigns work in Assignments (or from Browse)."
    done = sum(q.status == "done" for q in items)
    skipped = sum(q.status == "skipped" for q in items)
    left = len(items) - done - skipped
    line = f"**{done:,}** of **{len(items):,}** submitted · **{left:,}** open"
    if skipped:
        line += f" · {skipped:,} skipped"
    return line + ("" if left else " · all done, thank you!")


def item_header(item: work.QueueItem) -> str:
    what = f"Record #{item.item_id}" if item.item_type == "record" else f"Task #{item.item_id} · {item.title}"
    line = f"**{text_markdown(what)}** in {text_markdown(item.dataset)} · {STATUS_WORDS[item.status]}"
    if item.others:
        line += (f" · {item.others} other annotator{'s' * (item.others != 1)} answer{'s' * (item.others == 1)} it "
                 "too, without seeing your answer")
    if item.status == "skipped" and item.note:
        line += f" · skipped: {text_markdown(item.note)}"
    return line


def build(ctx: AppContext) -> dict:
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(label="Dataset", choices=[("All datasets", "")], value="", scale=2,
                              allow_custom_value=True, elem_id="queue-dataset")
        finished = gr.Checkbox(label="Show submitted and skipped", value=True, scale=1, elem_id="queue-finished")
        refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="queue-refresh")
    progress = gr.Markdown(elem_id="queue-progress")
    with gr.Row():
        with gr.Column(scale=3):
            current = gr.Number(visible=False, precision=0, elem_id="queue-current", label="assignment")
            item_dataset = gr.Textbox(visible=False, label="item dataset")
            header = gr.Markdown("Open an item from the list below, or press **Next ▶**.", elem_id="queue-header")
            instruction = gr.Textbox(label="Instruction (or the task's definition)", interactive=False, lines=3,
                                     elem_id="queue-instruction")
            source = gr.Textbox(label="Input", interactive=False, lines=2, elem_id="queue-input")
            current_output = gr.Textbox(label="Current output", interactive=False, lines=3,
                                        elem_id="queue-current-output")
            with gr.Row(equal_height=True):
                start_from = gr.Button("Start from the current output", size="sm", scale=0, min_width=220,
                                       elem_id="queue-start-from")
                open_task = gr.Button("Open the task in the editor", size="sm", visible=False, scale=0,
                                      min_width=220, elem_id="queue-open-task")
            answer = gr.Textbox(label="Your answer (the output you would write)", lines=5, elem_id="queue-answer")
            rating = gr.Radio(RATINGS, value="", label="How good is the current output? (optional)",
                              elem_id="queue-rating")
            skip_note = gr.Textbox(label="Why skip it? (optional, the curator sees it)", elem_id="queue-skip-note")
            with gr.Row():
                previous_btn = gr.Button("◀ Previous · Alt+P", elem_classes=["shortcut-previous"],
                                         elem_id="queue-previous")
                next_btn = gr.Button("Next ▶ · Alt+N", elem_classes=["shortcut-next"], elem_id="queue-next")
                save = gr.Button("Save · Ctrl+S", elem_classes=["shortcut-save"], elem_id="queue-save")
                submit = gr.Button("Submit · Ctrl+Enter", variant="primary", elem_classes=["shortcut-submit"],
                                   elem_id="queue-submit")
                skip = gr.Button("Skip · Alt+K", elem_classes=["shortcut-skip"], elem_id="queue-skip")
            status = gr.Markdown(elem_id="queue-status")
        with gr.Column(scale=2):
            attach_guidelines_panel(ctx, dataset=item_dataset, where="queue")
    table = gr.Dataframe(interactive=False, wrap=True, max_height=420, elem_id="queue-table",
                         column_widths=["10%", "14%", "8%", "8%", "10%", "50%"])
    gr.Markdown("Click a row to open it.", elem_classes=["hint"])

    shown = [current, item_dataset, header, instruction, source, current_output, answer, rating, open_task]

    def fields(item: work.QueueItem | None) -> tuple:
        if item is None:
            return (None, "", "Nothing open in your queue.", "", "", "", "", "", gr.update(visible=False))
        return (item.assignment_id, item.dataset, item_header(item), item.instruction, item.input,
                item.current_output, item.answer, "" if item.rating is None else str(item.rating),
                gr.update(visible=item.item_type == "task"))

    @ctx.friendly
    def my_queue(dataset_v, finished_v, request: gr.Request):
        """Your assignments (open first) as a table, and how far you are."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            everything = work.my_queue(session, actor, dataset=dataset_v or None)
        shown = everything if finished_v else [q for q in everything if q.status == "open"]
        return queue_frame(shown), progress_line(everything)

    @ctx.friendly
    def my_queue_open(assignment_id, request: gr.Request):
        """Open one of your assignments."""
        actor = ctx.actor(request)
        if assignment_id in (None, ""):
            raise InvalidInput("choose an item of your queue")
        with ctx.session() as session:
            item = work.queue_item(session, actor, int(assignment_id))
        return (*fields(item), "")

    def step(session, actor, dataset_v, current_v, forward: bool) -> work.QueueItem | None:
        items = work.my_queue(session, actor, dataset=dataset_v or None)
        if forward:
            chosen = work.next_open(items, int(current_v) if current_v not in (None, "") else None)
        else:
            ids = [q.assignment_id for q in items]
            at = ids.index(int(current_v)) if current_v not in (None, "") and int(current_v) in ids else 0
            chosen = items[at - 1] if items else None
        return work.queue_item(session, actor, chosen.assignment_id) if chosen else None

    @ctx.friendly
    def my_queue_next(dataset_v, current_v, request: gr.Request):
        """The next open item after the one on screen (wrapping around)."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            item = step(session, actor, dataset_v, current_v, True)
        return (*fields(item), "" if item else "Nothing open in your queue.")

    @ctx.friendly
    def my_queue_previous(dataset_v, current_v, request: gr.Request):
        actor = ctx.actor(request)
        with ctx.session() as session:
            item = step(session, actor, dataset_v, current_v, False)
        return (*fields(item), "")

    def need_item(current_v) -> int:
        if current_v in (None, ""):
            raise InvalidInput("open an item of your queue first")
        return int(current_v)

    @ctx.friendly
    def my_queue_save(current_v, answer_v, rating_v, request: gr.Request):
        """Keep your answer (and rating) without submitting it."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            item = work.save_answer(session, actor, need_item(current_v), answer=answer_v, rating=rating_v or None)
            session.commit()
        return item_header(item), f"Saved #{item.assignment_id}."

    @ctx.friendly
    def my_queue_submit(dataset_v, current_v, answer_v, rating_v, request: gr.Request):
        """Submit your answer, then open the next open item."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            done = work.submit_answer(session, actor, need_item(current_v), answer=answer_v, rating=rating_v or None)
            session.commit()
            item = step(session, actor, dataset_v, done.assignment_id, True)
        said = f"Submitted #{done.assignment_id}." + ("" if item else " Nothing open is left in your queue.")
        return (*fields(item), said)

    @ctx.friendly
    def my_queue_skip(dataset_v, current_v, note_v, request: gr.Request):
        """Set the item aside (with an optional note for the curator), then open the next open item."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            done = work.skip_item(session, actor, need_item(current_v), note=note_v)
            session.commit()
            item = step(session, actor, dataset_v, done.assignment_id, True)
        return (*fields(item), f"Skipped #{done.assignment_id}.")

    @ctx.friendly
    def open_the_task(current_v, request: gr.Request):
        actor = ctx.actor(request)
        with ctx.session() as session:
            item = work.queue_item(session, actor, need_item(current_v))
        if item.item_type != "task":
            return gr.skip(), gr.skip()
        return open_item("task", item.item_id)

    def open_row(event: gr.SelectData):
        row = event.row_value or []
        return row[0] if row else gr.skip()

    @ctx.friendly
    def on_load(request: gr.Request):
        ctx.actor(request)
        return gr.update(choices=[("All datasets", "")] + [(d, d) for d in ctx.datasets()])

    private = dict(api_visibility="private", show_progress="hidden")
    listed = ([dataset, finished], [table, progress])
    opened = [*shown, status]
    refresh.click(my_queue, *listed, api_name="my_queue", show_progress="hidden")
    dataset.input(my_queue, *listed, **private)
    finished.input(my_queue, *listed, **private)
    table.select(open_row, None, [current], **private).then(my_queue_open, [current], opened, **private)
    next_btn.click(my_queue_next, [dataset, current], opened, api_name="my_queue_next", show_progress="hidden")
    previous_btn.click(my_queue_previous, [dataset, current], opened, **private)
    save.click(my_queue_save, [current, answer, rating], [header, status], api_name="my_queue_save",
               show_progress="hidden").success(my_queue, *listed, **private)
    submit.click(my_queue_submit, [dataset, current, answer, rating], opened, api_name="my_queue_submit",
                 show_progress="hidden").success(my_queue, *listed, **private)
    skip.click(my_queue_skip, [dataset, current, skip_note], opened, api_name="my_queue_skip",
               show_progress="hidden").success(lambda: "", None, [skip_note], **private).then(
        my_queue, *listed, **private)
    start_from.click(lambda text: text, [current_output], [answer], **private)
    open_task.click(open_the_task, [current], [ctx.open_request, ctx.tabs], **private)
    ctx.on_load(on_load, None, [dataset])
    if ctx.tab is not None:  # the list is read when the tab is opened, not on every page load
        ctx.tab.select(my_queue, *listed, **private)
    return {}
