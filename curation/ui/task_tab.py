"""The task editor: an SNI task's definition, positive and negative examples, and instances."""
from __future__ import annotations

import gradio as gr

from curation.quality.records import record_flags
from curation.records import RecordDraft
from curation.services import history, tasks
from curation.services.annotation import InvalidInput
from curation.services.tasks import ExampleForm, TaskForm, TaskView
from curation.services.taxonomy import SNI_CATEGORIES, SNI_DOMAINS
from curation.ui import task_drafts
from curation.ui import task_tables as tables
from curation.ui.inputs import WholeNumber
from curation.ui.context import AppContext, requested_item
from curation.ui.editor_actions import editor_actions
from curation.ui.guidelines_panel import attach_guidelines_panel
from curation.ui.panels import TEMPLATES, checks_html, history_html, preview_values, status_html
from curation.ui.safe import text_markdown

TAB_TITLE = "Task"
TAB_ORDER = 30
FLAG_SAMPLE = 500  # instances checked for quality flags as you type
REMEMBERED_INSTANCES = 1000  # unsaved instance tables up to this size survive a reload
_NOTHING_SELECTED = "Click an example in the table to edit, move or remove it."


def _editing(number: int) -> str:
    return f"Editing example **{number}**: change it below, then Update."


def instance_flags(form: TaskForm) -> dict[str, str]:
    """Quality flags over the instances (definition as the instruction), counted per check."""
    found: dict[str, tuple[int, str]] = {}
    for number, instance in enumerate(form.instances[:FLAG_SAMPLE], start=1):
        for name, reason in record_flags(form.definition, instance.input, instance.outputs).items():
            count, first = found.get(name, (0, f"instance {number}: {reason}"))
            found[name] = (count + 1, first)
    return {name: (first if count == 1 else f"{count} instances, e.g. {first}") for name, (count, first) in found.items()}


def build(ctx: AppContext) -> dict:
    with gr.Row(elem_classes=["editor"]):
        with gr.Column(scale=3, elem_classes=["editor-main"]):
            status = gr.HTML(status_html("task", None, None), elem_id="task-status")
            with gr.Row():
                dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, scale=1,
                                      elem_id="task-dataset")
                name = gr.Textbox(label="Task name", placeholder="e.g. task_country_capital", scale=2,
                                  elem_id="task-name")
            definition = gr.Textbox(label="Definition", lines=4, max_lines=20, elem_id="task-definition",
                                    info="Markdown. Say what the input is and what the output must be.")
            with gr.Accordion("Definition as annotators will read it", open=False):
                definition_view = gr.Markdown(elem_id="task-definition-view")
            with gr.Row():
                emphasis = gr.Textbox(label="Emphasis & caution", lines=2, elem_id="task-emphasis")
                avoid = gr.Textbox(label="Things to avoid", lines=2, elem_id="task-avoid")
            with gr.Row():
                categories = gr.Dropdown(label="Categories", choices=SNI_CATEGORIES, multiselect=True,
                                         allow_custom_value=True, elem_id="task-categories")
                domains = gr.Dropdown(label="Domains", choices=SNI_DOMAINS, multiselect=True, allow_custom_value=True,
                                      elem_id="task-domains")

            examples_title = gr.Markdown("#### Examples", elem_classes=["section-title"], elem_id="task-examples-title")
            examples = gr.Dataframe(value=tables.examples_frame([]), headers=tables.EXAMPLE_COLUMNS,
                                    interactive=False, wrap=True, show_row_numbers=True, max_height=320,
                                    elem_id="task-examples", column_widths=["90px", "28%", "24%", "30%"])
            with gr.Group(elem_id="example-editor") as example_editor:
                with gr.Row():
                    kind = gr.Radio(["positive", "negative"], value="positive", label="Kind", scale=1,
                                    elem_id="example-kind")
                    selected_info = gr.Markdown("Click an example in the table to edit, move or remove it.",
                                                elem_classes=["hint"], elem_id="example-selected-info")
                    selected = WholeNumber(visible=False, precision=0, value=None, label="selected example")
                with gr.Row():
                    ex_input = gr.Textbox(label="Example input", lines=2, elem_id="example-input")
                    ex_output = gr.Textbox(label="Example output", lines=2, elem_id="example-output")
                ex_explanation = gr.Textbox(label="Explanation", lines=2, elem_id="example-explanation",
                                            placeholder="Why this output is right (or, for a negative, wrong)")
                with gr.Row(elem_classes=["example-actions"]):
                    add_ex = gr.Button("Add example", variant="primary", size="sm", min_width=90, elem_id="example-add")
                    update_ex = gr.Button("Update", size="sm", min_width=80, elem_id="example-update")
                    remove_ex = gr.Button("Remove", size="sm", min_width=80, elem_id="example-remove")
                    up_ex = gr.Button("▲ Up", size="sm", min_width=60, elem_id="example-up")
                    down_ex = gr.Button("▼ Down", size="sm", min_width=60, elem_id="example-down")

            instances_title = gr.Markdown("#### Instances", elem_classes=["section-title"],
                                          elem_id="task-instances-title")
            instances = gr.Dataframe(value=tables.instances_frame([]), headers=tables.INSTANCE_COLUMNS,
                                     interactive=True, wrap=True, show_row_numbers=True, max_height=420,
                                     elem_id="task-instances")
            with gr.Accordion("Paste instances from a spreadsheet", open=False, elem_id="paste-accordion") as paste_box:
                pasted = gr.Textbox(label="Rows to add", lines=4, elem_id="task-paste",
                                    placeholder="one instance per line: input<TAB>output (or JSON lines)")
                paste_btn = gr.Button("Add pasted rows", size="sm", elem_id="task-paste-add")
            drafts = task_drafts.panel(ctx)

            actions = editor_actions("task")
            new_btn, save_btn, submit_btn = actions.new, actions.save, actions.submit
            review_box, reason = actions.review_box, actions.reason
            approve_btn, reject_btn, discard_btn = actions.approve, actions.reject, actions.discard
            task_id = WholeNumber(visible=False, precision=0, label="task id")
            version = WholeNumber(visible=False, precision=0, label="version")
            open_btn = gr.Button(visible=False)
        with gr.Column(scale=2, elem_classes=["side"]):
            attach_guidelines_panel(ctx, dataset=dataset, where="task")
            gr.Markdown("#### Checks")
            checks = gr.HTML(checks_html([], {}, what="task"), elem_id="task-checks")
            gr.Markdown("#### Training preview (first instance)")
            template = gr.Radio(list(TEMPLATES), value="Alpaca prompt", show_label=False, elem_id="task-template")
            tokenizer = gr.Textbox(value=ctx.preview_tokenizer or "", label="Tokenizer", elem_id="task-tokenizer",
                                   placeholder="local folder or cached Hub name, for the chat template and tokens")
            tokens = gr.Markdown(elem_id="task-tokens")
            preview = gr.Textbox(label="As training sees it", lines=10, max_lines=30, interactive=False,
                                 buttons=["copy"], elem_id="task-preview")
            with gr.Accordion("History", open=True):
                history_box = gr.HTML(history_html([]), elem_id="task-history")
    draft = ctx.browser_state("instruct-studio-task")

    fields = [dataset, name, definition, emphasis, avoid, categories, domains, examples, instances]
    text_fields = [dataset, name, definition, emphasis, avoid, categories, domains]
    # "new", "edit" or "read-only" (a plain value in the API); the fields' interactivity follows it.
    access = gr.Textbox(visible=False, label="access")
    view_outputs = [task_id, version, status, *fields, definition_view, history_box, access, save_btn, submit_btn,
                    approve_btn, reject_btn, discard_btn, example_editor, paste_box, draft]

    def form_of(dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v, domains_v, examples_v,
                instances_v) -> TaskForm:
        return TaskForm(dataset=dataset_v or "", name=name_v or "", definition=definition_v or "",
                        emphasis_and_caution=emphasis_v or "", things_to_avoid=avoid_v or "",
                        categories=list(categories_v or []), domains=list(domains_v or []),
                        examples=tables.examples_from(examples_v), instances=tables.instances_from(instances_v))

    def show(view: TaskView | None, user: str) -> tuple:
        if view is None:
            choices = ctx.datasets()
            values = [choices[0] if len(choices) == 1 else None, "", "", "", "", [], [],
                      tables.examples_frame([]), tables.instances_frame([])]
            return (None, None, status_html("task", None, None), *values, "", history_html([]), "new",
                    gr.update(interactive=True), gr.update(interactive=True), gr.update(interactive=False),
                    gr.update(interactive=False), gr.update(interactive=False), gr.update(visible=True),
                    gr.update(visible=True), {"user": user})
        with ctx.session() as session:
            entries = history.item_history(session, "task", view.id)
        f = view.form
        values = [f.dataset, f.name, f.definition, f.emphasis_and_caution, f.things_to_avoid, f.categories,
                  f.domains, tables.examples_frame(f.examples), tables.instances_frame(f.instances)]
        line = status_html("task", view.id, view.status, version=view.version, author=view.created_by,
                           updated_by=view.updated_by, read_only=not view.can_edit, note=view.review_note)
        return (view.id, view.version, line, *values, text_markdown(f.definition), history_html(entries),
                "edit" if view.can_edit else "read-only",
                gr.update(interactive=view.can_edit),
                gr.update(interactive=view.can_edit and view.status in ("draft", "rejected")),
                gr.update(interactive=view.can_review), gr.update(interactive=view.can_review),
                gr.update(interactive=view.status != "discarded" and view.can_edit),
                gr.update(visible=view.can_edit), gr.update(visible=view.can_edit), {"user": user, "id": view.id})

    @ctx.friendly
    def task_open(task_id, request: gr.Request):
        """Open a task by id in the editor."""
        actor = ctx.actor(request)
        if not task_id:
            raise InvalidInput("give a task id")
        with ctx.session() as session:
            view = tasks.open_task(session, actor, int(task_id))
        return show(view, actor.name)

    def run(action: str, request: gr.Request, item_id, item_version, values: tuple, note: str | None = None):
        actor = ctx.actor(request)
        form = form_of(*values)
        item_id = int(item_id) if item_id else None
        item_version = int(item_version) if item_version else None
        with ctx.session() as session:
            if action == "save" or item_id is None:
                view = tasks.save_task(session, actor, form, task_id=item_id, expected_version=item_version)
                item_id, item_version = view.id, view.version
            if action != "save":
                view = tasks.change_task(session, actor, item_id, action, expected_version=item_version,
                                         form=None if action == "discard" else form, reason=note)
        gr.Info({"save": "Task saved.", "submit": "Task submitted for review.", "approve": "Task approved.",
                 "reject": "Task rejected: the annotator will see your note.", "discard": "Task discarded."}[action])
        return show(view, actor.name)

    @ctx.friendly
    def task_save(task_id, version, dataset, name, definition, emphasis_and_caution, things_to_avoid, categories,
                  domains, examples, instances, request: gr.Request):
        """Save the task (a new draft when task_id is empty); refused if someone saved since `version`."""
        return run("save", request, task_id, version, (dataset, name, definition, emphasis_and_caution,
                                                       things_to_avoid, categories, domains, examples, instances))

    @ctx.friendly
    def task_submit(task_id, version, dataset, name, definition, emphasis_and_caution, things_to_avoid, categories,
                    domains, examples, instances, request: gr.Request):
        """Save the form's edits and submit the task for review."""
        return run("submit", request, task_id, version, (dataset, name, definition, emphasis_and_caution,
                                                         things_to_avoid, categories, domains, examples, instances))

    @ctx.friendly
    def task_approve(task_id, version, dataset, name, definition, emphasis_and_caution, things_to_avoid,
                     categories, domains, examples, instances, request: gr.Request):
        """Approve a submitted task and its instances (curators), with the form's edits if any."""
        return run("approve", request, task_id, version, (dataset, name, definition, emphasis_and_caution,
                                                          things_to_avoid, categories, domains, examples, instances))

    @ctx.friendly
    def task_reject(task_id, version, dataset, name, definition, emphasis_and_caution, things_to_avoid,
                    categories, domains, examples, instances, note, request: gr.Request):
        """Reject a submitted task with a note the annotator sees (curators)."""
        return run("reject", request, task_id, version, (dataset, name, definition, emphasis_and_caution,
                                                         things_to_avoid, categories, domains, examples, instances),
                   note)

    @ctx.friendly
    def task_discard(task_id, version, dataset, name, definition, emphasis_and_caution, things_to_avoid,
                     categories, domains, examples, instances, request: gr.Request):
        """Discard the task and its instances (curators)."""
        return run("discard", request, task_id, version, (dataset, name, definition, emphasis_and_caution,
                                                          things_to_avoid, categories, domains, examples, instances))

    @ctx.friendly
    def task_new(request: gr.Request):
        return show(None, ctx.actor(request).name)

    @ctx.friendly
    def live(dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v, domains_v, examples_v,
             instances_v, template_v, tokenizer_v, request: gr.Request):
        ctx.actor(request)  # the preview may load a tokenizer from this machine's disk
        try:
            form = form_of(dataset_v, name_v or "untitled", definition_v, emphasis_v, avoid_v, categories_v,
                           domains_v, examples_v, instances_v)
        except InvalidInput as exc:
            return (checks_html([], {"table": str(exc)}, what="task"), "", "", text_markdown(definition_v),
                    gr.skip(), gr.skip())
        first = form.instances[0] if form.instances else None
        record = RecordDraft(instruction=form.definition, input=first.input, outputs=first.outputs) if first else None
        text, count = preview_values(record, template_v, tokenizer_v)
        positives = sum(e.kind == "positive" for e in form.examples)
        return (checks_html(tasks.violations(form), instance_flags(form), what="task"), text, count,
                text_markdown(definition_v),
                f"#### Examples · {positives} positive, {len(form.examples) - positives} negative",
                f"#### Instances · {len(form.instances):,}")

    def remember(item_id, item_version, dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v,
                 domains_v, examples_v, instances_v, request: gr.Request):
        """What the browser keeps, so a reload does not lose unsaved work (a big instance table stays server-side)."""
        instance_rows = tables._rows(instances_v)
        return {"user": getattr(request, "username", None), "id": item_id, "version": item_version, "dirty": True,
                "values": [dataset_v, name_v, definition_v, emphasis_v, avoid_v, list(categories_v or []),
                           list(domains_v or []), tables._rows(examples_v),
                           instance_rows if len(instance_rows) <= REMEMBERED_INSTANCES else None]}

    @ctx.friendly
    def restore(stored, request: gr.Request):
        actor = ctx.actor(request)
        reviewer = gr.update(visible=actor.reviews)
        result = list(show(None, actor.name))
        if isinstance(stored, dict) and stored.get("user") == actor.name:
            if stored.get("id"):
                try:
                    with ctx.session() as session:
                        result = list(show(tasks.open_task(session, actor, int(stored["id"])), actor.name))
                except Exception:  # the task may be gone; start blank
                    stored = {"user": actor.name}
            values = list(stored.get("values") or [])
            if stored.get("dirty") and len(values) == 9:
                values[7] = tables.examples_frame(tables.examples_from(values[7]))
                values[8] = (result[11] if values[8] is None  # too many to keep in the browser: the saved ones
                             else tables.instances_frame(tables.instances_from(values[8])))
                result[0], result[1], result[3:12] = stored.get("id"), stored.get("version"), values
                result[-1] = stored
                gr.Info("Your unsaved edits were restored.")
        if not result[0] and all(value is None or len(value) == 0 for value in result[4:12]):
            # Nothing to restore: the page starts with this blank form, so only what differs from it is sent.
            result[0:3] = [gr.skip()] * 3  # id, version, status line
            result[4:14] = [gr.skip()] * 10  # the fields but the dataset, the definition as shown, the history
        result[3] = gr.update(value=result[3], choices=ctx.datasets())
        return (*result, reviewer)

    # Examples: the form below the table edits the row selected in it.
    def pick_example(table, event: gr.SelectData):
        rows = tables.examples_from(table)
        index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        if index is None or index >= len(rows):
            return (gr.skip(),) * 6
        e = rows[index]
        return index + 1, _editing(index + 1), e.kind, e.input, e.output, e.explanation

    @ctx.friendly
    def change_examples(operation: str, table, number, kind_v, input_v, output_v, explanation_v):
        rows = tables.examples_from(table)
        index = int(number) - 1 if number else None
        if operation != "add" and (index is None or not 0 <= index < len(rows)):
            raise InvalidInput("select an example in the table first")
        example = ExampleForm(kind_v or "positive", input_v or "", output_v or "", explanation_v or "")
        if operation in ("add", "update") and not (example.input.strip() or example.output.strip()):
            raise InvalidInput("write the example's input and output first")
        if operation == "add":
            rows.append(example)
            index = len(rows) - 1
        elif operation == "update":
            rows[index] = example
        elif operation == "remove":
            rows.pop(index)
            return tables.examples_frame(rows), None, _NOTHING_SELECTED, "positive", "", "", ""
        else:
            rows, index = tables.move(rows, index, -1 if operation == "up" else 1)
        if operation == "add":
            return tables.examples_frame(rows), None, _NOTHING_SELECTED, kind_v, "", "", ""
        return tables.examples_frame(rows), index + 1, _editing(index + 1), gr.skip(), gr.skip(), gr.skip(), gr.skip()

    @ctx.friendly
    def add_pasted(table, text):
        rows = tables.instances_from(table) + tables.parse_pasted(text)
        return tables.instances_frame(rows), ""

    private = dict(api_visibility="private", show_progress="hidden")
    # A refused save must not cover the form with error badges: the edit stays visible, the toast says why.
    public = dict(show_progress="hidden")
    live_inputs = [*fields, template, tokenizer]
    live_outputs = [checks, preview, tokens, definition_view, examples_title, instances_title]
    remember_inputs = [task_id, version, *fields]

    def refresh(access_v, dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v, domains_v, examples_v,
                instances_v, template_v, tokenizer_v, request: gr.Request):
        """After a task is shown: the fields' interactivity, then checks and preview."""
        editable = access_v != "read-only"
        locks = [gr.update(interactive=access_v == "new")] + [gr.update(interactive=editable)] * 6
        return (*locks, gr.update(interactive=editable),
                *live(dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v, domains_v, examples_v,
                      instances_v, template_v, tokenizer_v, request))

    lockable = [*text_fields, instances]

    def then_live(event):
        return event.then(refresh, [access, *live_inputs], [*lockable, *live_outputs], **private)

    def edited(event):
        """After any user edit: checks and preview, and the browser's copy of the unsaved form."""
        event.then(live, live_inputs, live_outputs, **private).then(remember, remember_inputs, [draft], **private)

    then_live(open_btn.click(task_open, [task_id], view_outputs, api_name="task_open"))
    task_inputs = [task_id, version, *fields]
    then_live(save_btn.click(task_save, task_inputs, view_outputs, api_name="task_save", **public))
    then_live(submit_btn.click(task_submit, task_inputs, view_outputs, api_name="task_submit", **public))
    then_live(approve_btn.click(task_approve, task_inputs, view_outputs, api_name="task_approve", **public))
    then_live(reject_btn.click(task_reject, [*task_inputs, reason], view_outputs, api_name="task_reject", **public))
    then_live(discard_btn.click(task_discard, task_inputs, view_outputs, api_name="task_discard", **public))
    then_live(new_btn.click(task_new, None, view_outputs, **private))
    example_inputs = [examples, selected, kind, ex_input, ex_output, ex_explanation]
    example_outputs = [examples, selected, selected_info, kind, ex_input, ex_output, ex_explanation]
    for button, operation in ((add_ex, "add"), (update_ex, "update"), (remove_ex, "remove"), (up_ex, "up"),
                              (down_ex, "down")):
        edited(button.click(lambda *a, _op=operation: change_examples(_op, *a), example_inputs, example_outputs,
                            **private))
    examples.select(pick_example, [examples], example_outputs[1:], **private)
    edited(paste_btn.click(add_pasted, [instances, pasted], [instances, pasted], **private))
    # On change, not input: in Gradio 6.31 a textbox's input fires on key presses only (not on a paste); one
    # listener for all fields, so opening a task runs the checks once or twice, not once per field.
    gr.on([component.change for component in text_fields], live, live_inputs, live_outputs,
          trigger_mode="always_last", **private)
    for component in text_fields:
        component.input(remember, remember_inputs, [draft], trigger_mode="always_last", **private)
    instances.input(live, live_inputs, live_outputs, trigger_mode="always_last", **private)
    instances.input(remember, remember_inputs, [draft], trigger_mode="always_last", **private)
    # The tokenizer loads when its name is complete (Enter or leaving the box), not at every keystroke.
    for event in (template.change, tokenizer.submit, tokenizer.blur):
        event(live, live_inputs, live_outputs, trigger_mode="always_last", **private)

    @ctx.friendly
    def from_request(request_value, request: gr.Request):
        ctx.actor(request)
        wanted = requested_item(request_value, "task")
        if wanted is None:
            return tuple(gr.skip() for _ in view_outputs)
        return task_open(wanted, request)

    for saved in task_drafts.wire(ctx, drafts, task_id=task_id, version=version, example=selected, fields=fields,
                                  form_of=form_of, show=show, view_outputs=view_outputs):
        then_live(saved)

    if ctx.open_request is not None:
        then_live(ctx.open_request.change(from_request, [ctx.open_request], view_outputs, **private))
    ctx.on_load(restore, [draft], [*view_outputs, review_box],
                then=(refresh, [access, *live_inputs], [*lockable, *live_outputs]))
    return {}
