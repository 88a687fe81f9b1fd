"""The record editor: instruction, input, output(s), optional system prompt; checks, preview and history."""
from __future__ import annotations

import json
import logging

import gradio as gr

from curation.quality.records import record_flags
from curation.records import RecordDraft
from curation.services import annotation, history
from curation.services import guidelines as guidelines_service
from curation.services.annotation import RecordForm, RecordView
from curation.ui.inputs import WholeNumber
from curation.ui.context import AppContext, requested_item
from curation.ui.editor_actions import editor_actions
from curation.ui.guidelines_panel import attach_guidelines_panel
from curation.ui.record_notes import attach_record_notes
from curation.ui.record_drafts import build_model_panel, mark_html, other_outputs, parse_drafted
from curation.ui.record_scores import NOT_SAVED, build_scores_box, scores_panel
from curation.provenance import describe, models_used
from curation.ui.panels import TEMPLATES, checks_html, history_html, preview_values, status_html
from curation.ui.safe import esc

log = logging.getLogger("instruct_studio.ui")
TAB_TITLE = "Record"
TAB_ORDER = 20


def split_outputs(output: str, more: str) -> list[str]:
    """The main output, then each block of `more` (blocks separated by a line holding only ---)."""
    return [o for o in [output or "", *other_outputs(more)] if o.strip()]


def provenance_html(view: RecordView | None) -> str:
    """Where the open record came from and who wrote each field."""
    if view is None:
        return '<div class="provenance empty">Written by you, once saved.</div>'
    lines = describe(view.provenance, view.origin, view.created_by)
    if view.source and view.origin == "imported":
        lines[0] += f" from {view.source}"
    return '<ul class="provenance">' + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"


def _near_duplicate_hint():
    """The diversity work's live near-duplicate hint module, or None: the editor works without it."""
    try:
        from curation.ui import near_duplicate_hint
    except Exception:
        log.exception("near-duplicate hint unavailable")
        return None
    return near_duplicate_hint


def build(ctx: AppContext) -> dict:
    with gr.Row(elem_classes=["editor"]):
        with gr.Column(scale=3, elem_classes=["editor-main"]):
            status = gr.HTML(status_html("record", None, None), elem_id="record-status")
            with gr.Row():
                dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, elem_id="record-dataset",
                                      scale=2)
                category = gr.Textbox(label="Category", placeholder="e.g. open_qa, brainstorming", scale=2,
                                      elem_id="record-category")
            instruction = gr.Textbox(label="Instruction", lines=3, max_lines=12, elem_id="record-instruction",
                                     placeholder="What should the model do?")
            input_ = gr.Textbox(label="Input (optional)", lines=2, max_lines=12, elem_id="record-input",
                                placeholder="Context the instruction refers to, if any")
            output = gr.Textbox(label="Output", lines=6, max_lines=24, elem_id="record-output",
                                placeholder="The answer the model should learn to give")
            with gr.Accordion("System prompt and other acceptable outputs", open=False):
                system = gr.Textbox(label="System prompt (optional)", lines=2, elem_id="record-system")
                more = gr.Textbox(label="Other acceptable outputs", lines=3, elem_id="record-more",
                                  info="Separate outputs with a line holding only ---")
            panel = build_model_panel(ctx, dataset=dataset, instruction=instruction, input_=input_, output=output,
                                      more=more, system=system)
            drafted, mark = panel.drafted, panel.mark
            actions = editor_actions("record")
            new_btn, save_btn, submit_btn = actions.new, actions.save, actions.submit
            review_box, reason = actions.review_box, actions.reason
            approve_btn, reject_btn, discard_btn = actions.approve, actions.reject, actions.discard
            record_id = WholeNumber(visible=False, precision=0, label="record id")
            version = WholeNumber(visible=False, precision=0, label="version")
            open_btn = gr.Button(visible=False)
        with gr.Column(scale=2, elem_classes=["side"]):
            attach_guidelines_panel(ctx, dataset=dataset, where="record")
            gr.Markdown("#### Checks")
            checks = gr.HTML(checks_html([], {}), elem_id="record-checks")
            near_duplicates = _near_duplicate_hint()
            if near_duplicates is not None:
                hint = near_duplicates.attach_near_duplicate_hint(ctx, dataset=dataset, instruction=instruction,
                                                                  input=input_, output=output, record_id=record_id)
            save_anyway_btn = gr.Button("Not a duplicate: save anyway", visible=False, size="sm",
                                        elem_id="record-save-anyway")
            if near_duplicates is not None:
                hint.change(lambda shown: gr.update(visible=bool(shown)), hint, save_anyway_btn,
                            api_visibility="private", show_progress="hidden")
            if near_duplicates is not None:
                with gr.Accordion("Similar records", open=False, elem_id="record-similar-box"):
                    near_duplicates.attach_find_similar(ctx, dataset=dataset, record_id=record_id)
            attach_record_notes(ctx, record_id=record_id)
            gr.Markdown("#### Training preview")
            template = gr.Radio(list(TEMPLATES), value="Alpaca prompt", show_label=False, elem_id="record-template")
            tokenizer = gr.Textbox(value=ctx.preview_tokenizer or "", label="Tokenizer", elem_id="record-tokenizer",
                                   placeholder="local folder or cached Hub name, for the chat template and tokens")
            tokens = gr.Markdown(elem_id="record-tokens")
            preview = gr.Textbox(label="As training sees it", lines=10, max_lines=30, interactive=False,
                                 buttons=["copy"], elem_id="record-preview")
            with gr.Accordion("Provenance", open=True):
                provenance_box = gr.HTML(provenance_html(None), elem_id="record-provenance")
            scores_box = build_scores_box()
            with gr.Accordion("History", open=True):
                history_box = gr.HTML(history_html([]), elem_id="record-history")
    draft = ctx.browser_state("instruct-studio-record")

    fields = [dataset, category, system, instruction, input_, output, more]
    # "new", "edit" or "read-only": what the viewer may do with the open record (a plain value in the API);
    # the fields' interactivity follows it in a chained step, so the API returns plain field values.
    access = gr.Textbox(visible=False, label="access")
    view_outputs = [record_id, version, status, *fields, history_box, access, save_btn, submit_btn, approve_btn,
                    reject_btn, discard_btn, drafted, mark, provenance_box, scores_box, draft]

    def show(view: RecordView | None, user: str) -> tuple:
        if view is None:
            choices = ctx.datasets()
            return (None, None, status_html("record", None, None), choices[0] if len(choices) == 1 else None,
                    "", "", "", "", "", "", history_html([]), "new",
                    gr.update(interactive=True), gr.update(interactive=True), gr.update(interactive=False),
                    gr.update(interactive=False), gr.update(interactive=False), "{}", "", provenance_html(None),
                    NOT_SAVED, {"user": user})
        with ctx.session() as session:
            entries = history.item_history(session, "record", view.id)
            scores = scores_panel(session, view.id)
        f = view.form
        values = [f.dataset, f.category or "", f.system_prompt or "", f.instruction, f.input,
                  f.outputs[0] if f.outputs else "", "\n---\n".join(f.outputs[1:])]
        line = status_html("record", view.id, view.status, version=view.version, author=view.created_by,
                           updated_by=view.updated_by, read_only=not view.can_edit, note=view.review_note)
        if view.task_id:
            line += f'<div class="hint">An instance of task #{view.task_id}: its status follows the task.</div>'
        return (view.id, view.version, line, *values, history_html(entries), "edit" if view.can_edit else "read-only",
                gr.update(interactive=view.can_edit), gr.update(interactive=view.can_edit and view.status in
                                                                ("draft", "rejected")),
                gr.update(interactive=view.can_review), gr.update(interactive=view.can_review),
                gr.update(interactive=view.status != "discarded" and view.can_edit),
                "{}", mark_html(models_used(view.provenance), view.machine_draft), provenance_html(view), scores,
                {"user": user, "id": view.id})

    def form_of(dataset_v, category_v, system_v, instruction_v, input_v, output_v, more_v) -> RecordForm:
        return RecordForm(dataset=dataset_v or "", instruction=instruction_v or "", input=input_v or "",
                          outputs=split_outputs(output_v, more_v), system_prompt=system_v or None,
                          category=category_v or None)

    @ctx.friendly
    def record_open(record_id, request: gr.Request):
        """Open a record by id in the editor."""
        actor = ctx.actor(request)
        if not record_id:
            raise annotation.InvalidInput("give a record id")
        with ctx.session() as session:
            view = annotation.open_record(session, actor, int(record_id))
        return show(view, actor.name)

    def unconfirmed_near_duplicate(form: RecordForm, item_id: int | None, stored_text: tuple | None) -> str | None:
        """The warning for a new or re-worded record that repeats a live one; None if there is nothing to ask.

        Asked once the save has passed every check (nothing is committed yet), and only if the dataset's index
        answers now: a save never waits for it (when it is not built, index_ready starts it for later saves).
        """
        output_text = form.outputs[0] if form.outputs else ""
        if near_duplicates is None or (form.instruction, form.input, output_text) == stored_text:
            return None
        if not near_duplicates.index_ready(ctx, form.dataset):
            return None
        matches = near_duplicates.near_duplicates_for(ctx, form.dataset, form.instruction, form.input, output_text,
                                                      exclude_id=item_id)
        return near_duplicates.duplicate_warning(matches) if matches else None

    def run(action: str, actor, item_id, item_version, values: tuple, note: str | None = None,
            confirmed: bool = False, drafted_v: str | None = None) -> tuple:
        form = form_of(*values)
        drafts = parse_drafted(drafted_v)
        item_id = int(item_id) if item_id else None
        item_version = int(item_version) if item_version else None
        ask = action in ("save", "submit") and not confirmed
        with ctx.session() as session:
            stored_text = None
            if ask and item_id is not None:
                stored = annotation.open_record(session, actor, item_id).form
                stored_text = (stored.instruction, stored.input, (stored.outputs or [""])[0])
            asked_id = item_id
            if action == "save" or item_id is None or (drafts and action != "discard"):
                # A model's draft is saved first (its words, then the person's edit), then the action applies.
                view = annotation.save_record(session, actor, form, record_id=item_id, expected_version=item_version,
                                              drafts=drafts)
                item_id, item_version = view.id, view.version
            if action != "save":
                view = annotation.change_record(session, actor, item_id, action, expected_version=item_version,
                                                form=None if action == "discard" else form, reason=note)
            # Every check has passed and nothing is committed yet: a near-duplicate is refused by rolling back.
            warning = unconfirmed_near_duplicate(form, asked_id, stored_text) if ask else None
            if warning:
                raise gr.Error(f"Not saved. {warning} Press “Not a duplicate: save anyway” to keep it.",
                               duration=None, print_exception=False)
        if near_duplicates is not None and action != "discard":
            try:  # later hints see what was just saved
                near_duplicates.remember_saved(ctx, form.dataset, view.id, form.instruction, form.input,
                                               form.outputs[0] if form.outputs else "")
            except Exception:
                log.exception("near-duplicate hint could not take in record %s", view.id)
        gr.Info({"save": "Saved.", "submit": "Submitted for review.", "approve": "Approved.",
                 "reject": "Rejected: the annotator will see your note.", "discard": "Discarded."}[action])
        return show(view, actor.name)

    @ctx.friendly
    def record_save(record_id, version, dataset, category, system_prompt, instruction, input, output,
                    more_outputs, drafted_fields=None, request: gr.Request = None):
        """Save the record (a new draft when record_id is empty); refused if someone saved since `version`."""
        return run("save", ctx.actor(request), record_id, version,
                   (dataset, category, system_prompt, instruction, input, output, more_outputs),
                   drafted_v=drafted_fields)

    @ctx.friendly
    def record_save_anyway(record_id, version, dataset, category, system_prompt, instruction, input, output,
                           more_outputs, drafted_fields=None, request: gr.Request = None):
        """Save the record although it looks like a near-duplicate of an existing one."""
        return run("save", ctx.actor(request), record_id, version,
                   (dataset, category, system_prompt, instruction, input, output, more_outputs), confirmed=True,
                   drafted_v=drafted_fields)

    @ctx.friendly
    def record_submit(record_id, version, dataset, category, system_prompt, instruction, input, output,
                      more_outputs, drafted_fields=None, request: gr.Request = None):
        """Save the form's edits and submit the record for review."""
        return run("submit", ctx.actor(request), record_id, version,
                   (dataset, category, system_prompt, instruction, input, output, more_outputs),
                   drafted_v=drafted_fields)

    @ctx.friendly
    def record_approve(record_id, version, dataset, category, system_prompt, instruction, input, output,
                       more_outputs, drafted_fields=None, request: gr.Request = None):
        """Approve a submitted record (curators), with the form's edits if any."""
        return run("approve", ctx.actor(request), record_id, version,
                   (dataset, category, system_prompt, instruction, input, output, more_outputs),
                   drafted_v=drafted_fields)

    @ctx.friendly
    def record_reject(record_id, version, dataset, category, system_prompt, instruction, input, output,
                      more_outputs, note, drafted_fields=None, request: gr.Request = None):
        """Reject a submitted record with a note the annotator sees (curators)."""
        return run("reject", ctx.actor(request), record_id, version,
                   (dataset, category, system_prompt, instruction, input, output, more_outputs), note,
                   drafted_v=drafted_fields)

    @ctx.friendly
    def record_discard(record_id, version, dataset, category, system_prompt, instruction, input, output,
                       more_outputs, drafted_fields=None, request: gr.Request = None):
        """Discard the record (curators; it stays in the history, out of exports)."""
        return run("discard", ctx.actor(request), record_id, version,
                   (dataset, category, system_prompt, instruction, input, output, more_outputs),
                   drafted_v=drafted_fields)

    @ctx.friendly
    def record_new(request: gr.Request):
        actor = ctx.actor(request)
        return show(None, actor.name)

    @ctx.friendly
    def live(dataset_v, category_v, system_v, instruction_v, input_v, output_v, more_v, template_v, tokenizer_v,
             request: gr.Request):
        ctx.actor(request)  # the preview may load a tokenizer from this machine's disk
        outputs = split_outputs(output_v, more_v)
        record = RecordDraft(instruction=instruction_v or "", input=input_v or "", outputs=outputs,
                             system_prompt=system_v or None)
        flags = record_flags(instruction_v or "", input_v or "", outputs) if (instruction_v or outputs) else {}
        text, count = preview_values(record if (instruction_v or outputs) else None, template_v, tokenizer_v)
        rules = {}
        if flags:  # a failed check links to the dataset's guideline that cites it
            with ctx.session() as session:
                rules = guidelines_service.cited_checks(session, dataset=dataset_v)
        return checks_html([], flags, rules=rules), text, count or ""

    def remember(item_id, item_version, dataset_v, category_v, system_v, instruction_v, input_v, output_v, more_v,
                 drafted_v, request: gr.Request):
        """What the browser keeps, so a reload does not lose unsaved typing (nor which fields a model drafted)."""
        return {"user": getattr(request, "username", None), "id": item_id, "version": item_version, "dirty": True,
                "values": [dataset_v, category_v, system_v, instruction_v, input_v, output_v, more_v],
                "drafted": drafted_v or "{}"}

    @ctx.friendly
    def restore(stored, request: gr.Request):
        actor = ctx.actor(request)
        reviewer = gr.update(visible=actor.reviews)
        result = list(show(None, actor.name))
        if isinstance(stored, dict) and stored.get("user") == actor.name:
            if stored.get("id"):
                try:
                    with ctx.session() as session:
                        result = list(show(annotation.open_record(session, actor, int(stored["id"])), actor.name))
                except Exception:  # the record may be gone; start blank
                    stored = {"user": actor.name}
            values = stored.get("values") or []
            if stored.get("dirty") and len(values) == 7:
                result[0], result[1], result[3:10] = stored.get("id"), stored.get("version"), values
                # The model's drafts stay credited to it after a reload: the save still sends their keys.
                drafted_before = parse_drafted(stored.get("drafted"))
                result[17] = json.dumps(drafted_before)
                result[18] = mark_html(["a model"]) if drafted_before else result[18]
                result[-1] = stored
                gr.Info("Your unsaved edits were restored.")
        if not result[0] and all(not value for value in result[4:10]):
            # Nothing to restore: the page starts with this blank form, so only what differs from it is sent (a
            # smaller page load is ready sooner, and blank fields sent again would fire the hint's listeners).
            result[0:3] = [gr.skip()] * 3  # id, version, status line
            result[4:11] = [gr.skip()] * 7  # the fields but the dataset, and the history
        result[3] = gr.update(value=result[3], choices=ctx.datasets())
        return (*result, reviewer)

    live_inputs = [*fields, template, tokenizer]
    live_outputs = [checks, preview, tokens]
    private = dict(api_visibility="private", show_progress="hidden")
    # A refused save must not cover the form with error badges: the edit stays visible, the toast says why.
    public = dict(show_progress="hidden")

    def refresh(access_v, dataset_v, category_v, system_v, instruction_v, input_v, output_v, more_v, template_v,
                tokenizer_v, request: gr.Request):
        """After an item is shown: the fields' interactivity, then checks and preview."""
        editable = access_v != "read-only"
        locks = [gr.update(interactive=access_v == "new")] + [gr.update(interactive=editable)] * 6
        return (*locks, *live(dataset_v, category_v, system_v, instruction_v, input_v, output_v, more_v, template_v,
                              tokenizer_v, request))

    def then_live(event):
        return event.then(refresh, [access, *live_inputs], [*fields, *live_outputs], **private)

    then_live(open_btn.click(record_open, [record_id], view_outputs, api_name="record_open", queue=False))
    record_inputs = [record_id, version, *fields]
    # The drafted fields go last, so scripts that do not draft call the API as before.
    then_live(save_btn.click(record_save, [*record_inputs, drafted], view_outputs, api_name="record_save", **public))
    then_live(save_anyway_btn.click(record_save_anyway, [*record_inputs, drafted], view_outputs,
                                    api_name="record_save_anyway", **public))
    then_live(submit_btn.click(record_submit, [*record_inputs, drafted], view_outputs, api_name="record_submit",
                               **public))
    then_live(approve_btn.click(record_approve, [*record_inputs, drafted], view_outputs, api_name="record_approve",
                                **public))
    then_live(reject_btn.click(record_reject, [*record_inputs, reason, drafted], view_outputs,
                               api_name="record_reject", **public))
    then_live(discard_btn.click(record_discard, [*record_inputs, drafted], view_outputs, api_name="record_discard",
                                **public))
    then_live(new_btn.click(record_new, None, view_outputs, **private))
    # On change, not input: in Gradio 6.31 a textbox's input fires on key presses only, so a pasted instruction
    # would get no checks until the next key. One listener for all fields: opening a record changes seven of them
    # at once, and always_last then runs the checks once or twice, not seven times.
    gr.on([component.change for component in fields], live, live_inputs, live_outputs, trigger_mode="always_last",
          **private)
    for component in fields:
        component.input(remember, [record_id, version, *fields, drafted], [draft], trigger_mode="always_last",
                        **private)
    for event in panel.filled:
        event.then(remember, [record_id, version, *fields, drafted], [draft], **private)
    # The tokenizer loads when its name is complete (Enter or leaving the box), not at every keystroke.
    for event in (template.change, tokenizer.submit, tokenizer.blur):
        event(live, live_inputs, live_outputs, trigger_mode="always_last", **private)

    @ctx.friendly
    def from_request(request_value, request: gr.Request):
        ctx.actor(request)
        wanted = requested_item(request_value, "record")
        if wanted is None:
            return tuple(gr.skip() for _ in view_outputs)
        return record_open(wanted, request)

    if ctx.open_request is not None:
        then_live(ctx.open_request.change(from_request, [ctx.open_request], view_outputs, **private))

    def refresh_restored(access_v, *values, request: gr.Request):
        """refresh() after the page load's restore; a blank new form is left as the page starts it."""
        if access_v == "new" and not any(values[1:7]):
            return tuple(gr.skip() for _ in [*fields, *live_outputs])
        return refresh(access_v, *values, request)

    ctx.on_load(restore, [draft], [*view_outputs, review_box],
                then=(refresh_restored, [access, *live_inputs], [*fields, *live_outputs]))
    return {"record_id": record_id}
