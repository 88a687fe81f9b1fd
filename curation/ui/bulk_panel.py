"""Browse's bulk review panel (curators): select rows or take all that match, apply one action, undo one action."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from curation.services import assignments, browse, bulk_review
from curation.services.annotation import InvalidInput
from curation.ui.context import AppContext, open_item
from curation.ui.inputs import WholeNumber
from curation.ui.safe import text_markdown

ACTION_CHOICES = [("Approve", "approve"), ("Reject with a reason", "reject"), ("Discard", "discard"),
                  ("Add a tag", "tag"), ("Remove a tag", "untag"), ("Assign to annotators", "assign")]
SCOPE_CHOICES = [("The selected rows", "selected"), ("All records that match the filter", "all")]
NO_UNDO = "Undo last bulk action (none yet)"


@dataclass
class BulkPanel:
    panel: gr.Column
    select_mode: gr.Checkbox
    selection: gr.State
    selection_note: gr.Markdown
    wire: Callable[..., None]  # wire(query_of=, filters=, refresh=): its listeners, once the table exists


def selection_line(chosen: list[int] | None) -> str:
    chosen = chosen or []
    if not chosen:
        return "No rows selected."
    shown = ", ".join(f"#{i}" for i in chosen[:12]) + (f" and {len(chosen) - 12:,} more" if len(chosen) > 12 else "")
    return f"**{len(chosen):,}** row{'s' * (len(chosen) != 1)} selected: {shown}"


def undo_label(last: bulk_review.BulkActionView | None) -> dict:
    if last is None:
        return gr.update(value=NO_UNDO, interactive=False)
    return gr.update(value=f"Undo last bulk action: {last.describe()}", interactive=True)


def history_markdown(actions: list[bulk_review.BulkActionView]) -> str:
    if not actions:
        return "No bulk actions yet."
    lines = ["**Recent bulk actions**"]
    for action in actions:
        line = f"- {text_markdown(action.describe())} · {action.acted_at:%Y-%m-%d %H:%M}"
        if action.skipped:
            line += f" · {action.skipped:,} left as they were"
        if action.undone_at is not None:
            line += f" · **undone** by {text_markdown(action.undone_by or '?')}"
            if action.undo_skipped:
                line += f" ({action.undo_skipped:,} changed since, left as they were)"
        lines.append(line)
    return "\n".join(lines)


def open_row(kind_v, selecting, chosen, event: gr.SelectData):
    """A click on a row: in "Select rows" mode it joins (or leaves) the selection, else it opens in its editor."""
    row = event.row_value or []
    if not row:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    if selecting and kind_v != "Tasks":
        chosen = list(chosen or [])
        record_id = int(row[0])
        chosen = [i for i in chosen if i != record_id] if record_id in chosen else [*chosen, record_id]
        return chosen, selection_line(chosen), gr.skip(), gr.skip()
    return (gr.skip(), gr.skip(), *open_item("task" if kind_v == "Tasks" else "record", row[0]))


def attach_bulk_panel(ctx: AppContext) -> BulkPanel:
    """The panel (placed here, hidden until the page load shows it to a curator); call its wire() once the table
    is built: `query_of(*filter values)` is Browse's BrowseQuery for `filters`, `refresh` = (fn, inputs, outputs)
    redraws the table after an action.
    """
    with gr.Column(visible=False, elem_id="browse-bulk", elem_classes=["bulk-panel"]) as panel:
        gr.Markdown("**Bulk review** · curators", elem_classes=["review-box-title"])
        with gr.Row(equal_height=True):
            select_mode = gr.Checkbox(label="Select rows", value=False, scale=1, elem_id="browse-select-mode",
                                      info="a click on a row selects it (or unselects it) instead of opening it")
            selection_note = gr.Markdown(selection_line([]), elem_id="browse-selection")
            clear = gr.Button("Clear selection", size="sm", scale=0, min_width=140, elem_id="browse-selection-clear")
        with gr.Row(equal_height=True):
            scope = gr.Radio(SCOPE_CHOICES, value="selected", label="Apply to", scale=2, elem_id="browse-bulk-scope")
            action = gr.Dropdown(ACTION_CHOICES, value="approve", label="Action", scale=1, elem_id="browse-bulk-action")
            reason = gr.Textbox(label="Reason (the annotators see it)", visible=False, scale=2,
                                elem_id="browse-bulk-reason")
            tag = gr.Textbox(label="Tag", visible=False, scale=1, elem_id="browse-bulk-tag")
            annotators = gr.Dropdown(label="Annotators", choices=[], multiselect=True, visible=False, scale=2,
                                     elem_id="browse-bulk-annotators")
            overlap = WholeNumber(label="Annotators per record", value=1, minimum=1, precision=0, visible=False,
                                  scale=1, elem_id="browse-bulk-overlap")
            apply = gr.Button("Apply", variant="primary", scale=0, min_width=120, elem_id="browse-bulk-apply")
        result = gr.Markdown(elem_id="browse-bulk-result")
        undo = gr.Button(NO_UNDO, interactive=False, size="sm", elem_id="browse-bulk-undo")
        history = gr.Markdown(elem_id="browse-bulk-history")
    selection = gr.State([])

    def wire(*, query_of: Callable[..., Any], filters: list, refresh: tuple) -> None:
        _wire(ctx, query_of, filters, refresh, panel=panel, selection=selection, selection_note=selection_note,
              clear=clear, scope=scope, action=action, reason=reason, tag=tag, annotators=annotators,
              overlap=overlap, apply=apply, result=result, undo=undo, history=history)

    return BulkPanel(panel, select_mode, selection, selection_note, wire)


def _undo_state(session, actor) -> tuple:
    return (undo_label(bulk_review.last_undoable(session, actor)),
            history_markdown(bulk_review.recent_bulk_actions(session, actor)))


def _wire(ctx: AppContext, query_of: Callable[..., Any], filters: list, refresh: tuple, *, panel, selection,
          selection_note, clear, scope, action, reason, tag, annotators, overlap, apply, result, undo,
          history) -> None:
    undo_state = _undo_state
    tag_filter_box = filters[11]  # Browse's Tag filter: its choices take in a tag just put on records

    @ctx.friendly
    def bulk_apply(kind, dataset, status, category, author, text, sort, page, flag, written_by, meaning, tag_filter,
                   only, chosen, scope_v, action_v, reason_v, tag_v, annotators_v, overlap_v,
                   request: gr.Request = None):
        """Apply one action (approve, reject, discard, tag, untag, assign) to the selected rows or to every record
        that matches Browse's filters; one bulk action, undone as a whole by /browse_bulk_undo."""
        actor = ctx.actor(request)
        if kind == "Tasks":
            raise InvalidInput("bulk review works on records: show Records")
        query = query_of(kind, dataset, status, category, author, text, sort, page, flag, written_by, meaning,
                         tag_filter, only)
        with ctx.session() as session:
            ids = browse.matching_ids(session, query) if scope_v == "all" else list(chosen or [])
            if scope_v == "all" and not ids:
                raise InvalidInput("no record matches the filter")
            done = bulk_review.bulk_review(session, actor, record_ids=ids, action=action_v or "", reason=reason_v,
                                           tag=tag_v, annotators=list(annotators_v or []), overlap=overlap_v or 1,
                                           dataset=dataset or None)
            shown = undo_state(session, actor)
            tags = browse.tags_in_use(session)
        gr.Info(done.summary())
        return (text_markdown(done.summary()), [], selection_line([]), *shown,
                gr.update(choices=[("Any tag", "")] + [(t, t) for t in tags]))

    @ctx.friendly
    def bulk_undo(request: gr.Request = None):
        """Undo the last bulk action not yet undone: each record goes back as it was, unless changed since."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            last = bulk_review.last_undoable(session, actor)
            if last is None:
                raise InvalidInput("there is no bulk action to undo")
            done = bulk_review.undo_bulk_action(session, actor, last.id)
            shown = undo_state(session, actor)
        gr.Info(done.summary(undo=True))
        return text_markdown(done.summary(undo=True)), *shown

    @ctx.friendly
    def bulk_panel_shown(request: gr.Request):
        actor = ctx.actor(request)
        if not actor.reviews:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        with ctx.session() as session:
            names = assignments.annotators(session, actor)
            shown = undo_state(session, actor)
        return gr.update(visible=True), gr.update(choices=names), *shown

    private = dict(api_visibility="private", show_progress="hidden")
    refresh_fn, refresh_inputs, refresh_outputs = refresh
    # the fields the chosen action needs, and no others
    action.change(lambda a: (gr.update(visible=a == "reject"), gr.update(visible=a in ("tag", "untag")),
                             gr.update(visible=a == "assign"), gr.update(visible=a == "assign")),
                  [action], [reason, tag, annotators, overlap], **private)
    clear.click(lambda: ([], selection_line([])), None, [selection, selection_note], **private)
    apply.click(bulk_apply, [*filters, selection, scope, action, reason, tag, annotators, overlap],
                [result, selection, selection_note, undo, history, tag_filter_box], api_name="browse_bulk_apply",
                show_progress="hidden").success(refresh_fn, refresh_inputs, refresh_outputs, **private)
    undo.click(bulk_undo, None, [result, undo, history], api_name="browse_bulk_undo",
               show_progress="hidden").success(refresh_fn, refresh_inputs, refresh_outputs, **private)
    ctx.on_load(bulk_panel_shown, None, [panel, annotators, undo, history])
