"""Review: the queue of submitted items, oldest first or worst first by a score; approve, reject with a note, or
edit, then next."""
from __future__ import annotations


import gradio as gr
import pandas as pd

from curation.services import annotation, history, review, tasks
from curation.services.annotation import InvalidInput
from curation.ui.inputs import WholeNumber
from curation.ui.context import AppContext, open_item
from curation.ui.guidelines_panel import attach_guidelines_editor, attach_guidelines_panel
from curation.ui.panels import history_html, status_html
from curation.ui.record_scores import short_score
from curation.ui.safe import esc
from curation.services.permissions import Role

TAB_TITLE = "Review"
TAB_ORDER = 40
TAB_ROLES = ("curator",)  # and admins
QUEUE_COLUMNS = ["Kind", "ID", "Title", "Author", "Submitted"]
ORDERS = [("Oldest first", "")] + [(order.label, name) for name, order in review.QUEUE_ORDERS.items()]
SHOWN_INSTANCES = 20


def _block(label: str, text: str | None) -> str:
    body = esc(text) if (text or "").strip() else '<span class="quiet">(empty)</span>'
    return f'<div class="review-field"><div class="review-label">{esc(label)}</div><div class="review-text">{body}</div></div>'


def item_html(kind: str, view) -> str:
    """A submitted item laid out for reading: every user string escaped."""
    head = status_html(kind, view.id, view.status, version=view.version, author=view.created_by,
                       updated_by=view.updated_by)
    f = view.form
    if kind == "record":
        parts = [_block("Instruction", f.instruction), _block("Input", f.input)]
        entries = list((getattr(view, "provenance", None) or {}).get("outputs") or [])
        for n, text in enumerate(f.outputs or [""]):
            label = "Output" if n == 0 else f"Other output {n}"
            entry = entries[n] if n < len(entries) else None
            if entry and entry.get("by") == "model":
                # A curator should know which words no person has read yet before approving them.
                label += {"unreviewed": f" · 🤖 machine-drafted by {entry.get('model')}, unreviewed",
                          "edited": f" · machine-drafted by {entry.get('model')}, edited by {entry.get('edited_by')}",
                          "approved": f" · machine-drafted by {entry.get('model')}, approved"}.get(entry.get("state"), "")
            parts.append(_block(label, text))
        if f.system_prompt:
            parts.insert(0, _block("System prompt", f.system_prompt))
        return head + "".join(parts)
    parts = [_block("Task", f.name), _block("Definition", f.definition)]
    if f.emphasis_and_caution:
        parts.append(_block("Emphasis & caution", f.emphasis_and_caution))
    if f.things_to_avoid:
        parts.append(_block("Things to avoid", f.things_to_avoid))
    parts.append(_block("Categories", ", ".join(f.categories)))
    rows = "".join(f'<tr><td><span class="badge {"approved" if e.kind == "positive" else "rejected"}">{esc(e.kind)}'
                   f'</span></td><td>{esc(e.input)}</td><td>{esc(e.output)}</td><td>{esc(e.explanation)}</td></tr>'
                   for e in f.examples)
    parts.append('<div class="review-label">Examples</div><table class="mini"><tr><th>Kind</th><th>Input</th>'
                 f'<th>Output</th><th>Explanation</th></tr>{rows}</table>')
    shown = f.instances[:SHOWN_INSTANCES]
    rows = "".join(f"<tr><td>{esc(i.id)}</td><td>{esc(i.input)}</td><td>{esc(' | '.join(i.outputs))}</td></tr>"
                   for i in shown)
    more = (f'<div class="hint">… and {len(f.instances) - len(shown):,} more instances (open in the editor to see all)'
            f"</div>" if len(f.instances) > len(shown) else "")
    parts.append(f'<div class="review-label">Instances ({len(f.instances):,})</div><table class="mini"><tr><th>ID</th>'
                 f"<th>Input</th><th>Output</th></tr>{rows}</table>{more}")
    return head + "".join(parts)


def build(ctx: AppContext) -> dict:
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[("All datasets", "")], value="", scale=2,
                              allow_custom_value=True, elem_id="review-dataset")
        order = gr.Dropdown(label="Order", choices=ORDERS, value="", scale=2, elem_id="review-order")
        refresh = gr.Button("Refresh queue", scale=1, size="md", elem_id="review-refresh")
        count = gr.Markdown(elem_id="review-count")
    with gr.Row():
        with gr.Column(scale=2):
            queue = gr.Dataframe(value=pd.DataFrame(columns=QUEUE_COLUMNS), interactive=False, wrap=True,
                                 max_height=600, elem_id="review-queue",
                                 column_widths=["14%", "10%", "38%", "16%", "22%"])
            gr.Markdown("Click a row to review it. Ordered by a score, records without it come last (oldest first), "
                        "then tasks.", elem_classes=["hint"])
            guidelines = attach_guidelines_panel(ctx, dataset=dataset, where="review")
            attach_guidelines_editor(ctx, dataset=dataset, panel=guidelines)
        with gr.Column(scale=3):
            item = gr.HTML('<div class="queue-empty">Choose an item in the queue.</div>', elem_id="review-item")
            note = gr.Textbox(label="Review note", placeholder="Why it is rejected (the annotator sees this)",
                              elem_id="review-note")
            with gr.Row():
                approve_btn = gr.Button("Approve & next", variant="primary", size="md", elem_id="review-approve")
                reject_btn = gr.Button("Reject & next", variant="stop", size="md", elem_id="review-reject")
                edit_btn = gr.Button("Open in editor", size="md", elem_id="review-edit")
                skip_btn = gr.Button("Skip", variant="secondary", size="md", elem_id="review-skip")
            with gr.Accordion("History", open=False):
                history_box = gr.HTML(elem_id="review-history")
            kind = gr.Textbox(visible=False, label="kind")
            item_id = WholeNumber(visible=False, precision=0, label="item id")
            version = WholeNumber(visible=False, precision=0, label="version")
            open_btn = gr.Button(visible=False)

    def load_queue(actor, dataset_v, order_v):
        with ctx.session() as session:
            items = review.review_queue(session, actor, dataset=dataset_v or None, order=order_v or None)
        # Ordered by a score, the item's score takes the submission time's place (the table has no room for both).
        frame = pd.DataFrame([[i.kind, i.id, i.title, i.author,
                               short_score(order_v, i.score) if order_v else f"{i.submitted_at:%m-%d %H:%M}"]
                              for i in items], columns=QUEUE_COLUMNS[:4] + ["Score" if order_v else "Submitted"])
        return items, frame, f"**{len(items)}** waiting" if items else "Nothing waiting for review.."

    def show_item(actor, kind_v, id_v):
        if not kind_v or not id_v:
            return ('<div class="queue-empty">Nothing waiting for review.</div>', "", None, None, "", "")
        with ctx.session() as session:
            if kind_v == "task":
                view = tasks.open_task(session, actor, int(id_v))
            else:
                view = annotation.open_record(session, actor, int(id_v))
            entries = history.item_history(session, kind_v, int(id_v))
        return item_html(kind_v, view), kind_v, view.id, view.version, history_html(entries), ""

    @ctx.friendly
    def review_queue(dataset, order="", request: gr.Request = None):
        """The submitted items, oldest first or worst first by `order` (a score's name), and the first opened."""
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        items, frame, summary = load_queue(actor, dataset, order)
        first = items[0] if items else None
        return (frame, summary, *show_item(actor, first.kind if first else None, first.id if first else None))

    @ctx.friendly
    def review_open(kind, item_id, request: gr.Request):
        """Open one queued item (kind "record" or "task", and its id) for review."""
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return show_item(actor, kind, item_id)

    def decide(action: str, request, dataset_v, kind_v, id_v, version_v, note_v, order_v):
        actor = ctx.actor(request)
        if not kind_v or not id_v:
            raise InvalidInput("choose an item in the queue first")
        with ctx.session() as session:
            change = tasks.change_task if kind_v == "task" else annotation.change_record
            change(session, actor, int(id_v), action, expected_version=int(version_v) if version_v else None,
                   reason=note_v)
        gr.Info(f"{kind_v.capitalize()} #{int(id_v)} {'approved' if action == 'approve' else 'rejected'}.")
        return review_queue.__wrapped__(dataset_v, order_v, request)

    @ctx.friendly
    def review_approve(dataset, kind, item_id, version, order="", request: gr.Request = None):
        """Approve the item (curators) and open the next one in the queue."""
        return decide("approve", request, dataset, kind, item_id, version, None, order)

    @ctx.friendly
    def review_reject(dataset, kind, item_id, version, note, order="", request: gr.Request = None):
        """Reject the item with a note the annotator sees (curators), and open the next one."""
        return decide("reject", request, dataset, kind, item_id, version, note, order)

    @ctx.friendly
    def select_row(table, event: gr.SelectData, request: gr.Request):
        ctx.require(ctx.actor(request), Role.curator)
        row = event.row_value or []
        if len(row) < 2:
            return tuple(gr.skip() for _ in range(6))
        return review_open(row[0], int(row[1]), request)

    @ctx.friendly
    def skip(table, kind_v, id_v, request: gr.Request):
        actor = ctx.actor(request)
        rows = table.values.tolist() if isinstance(table, pd.DataFrame) else []
        keys = [(r[0], int(r[1])) for r in rows]
        position = keys.index((kind_v, int(id_v))) if id_v and (kind_v, int(id_v)) in keys else -1
        if not keys:
            return show_item(actor, None, None)
        following = keys[(position + 1) % len(keys)]
        return show_item(actor, *following)

    def edit(kind_v, id_v):
        if not kind_v or not id_v:
            return gr.skip(), gr.skip()
        return open_item(kind_v, id_v)

    private = dict(api_visibility="private", show_progress="hidden")
    item_outputs = [item, kind, item_id, version, history_box, note]
    queue_outputs = [queue, count, *item_outputs]
    # The order goes last, so scripts written before it call the API as before (oldest first).
    refresh.click(review_queue, [dataset, order], queue_outputs, api_name="review_queue")
    for chosen in (dataset, order):
        chosen.input(review_queue, [dataset, order], queue_outputs, **private)
    open_btn.click(review_open, [kind, item_id], item_outputs, api_name="review_open")
    approve_btn.click(review_approve, [dataset, kind, item_id, version, order], queue_outputs,
                      api_name="review_approve")
    reject_btn.click(review_reject, [dataset, kind, item_id, version, note, order], queue_outputs,
                     api_name="review_reject")
    queue.select(select_row, [queue], item_outputs, **private)
    skip_btn.click(skip, [queue, kind, item_id], item_outputs, **private)
    edit_btn.click(edit, [kind, item_id], [ctx.open_request, ctx.tabs], **private)

    @ctx.friendly
    def on_load(request: gr.Request):
        ctx.actor(request)
        return gr.update(choices=[("All datasets", "")] + [(d, d) for d in ctx.datasets()])

    @ctx.friendly
    def on_open(dataset_v, order_v, request: gr.Request):
        if not ctx.actor(request).reviews:
            return (pd.DataFrame(columns=QUEUE_COLUMNS), "", *(gr.skip(),) * 6)
        return review_queue.__wrapped__(dataset_v, order_v, request)

    ctx.on_load(on_load, None, [dataset])
    # The queue is read each time the tab is opened, so it is never stale.
    if ctx.tab is not None:
        ctx.tab.select(on_open, [dataset, order], queue_outputs, **private)
    return {}
