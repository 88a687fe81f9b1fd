"""Templates: turn a labelled dataset into instruction records through PromptSource or FLAN templates.

Pick a labelled source (a stored dataset, e.g. one imported from a table or the Hub), map its fields and
labels (each label value beside its id and the answer choice it names), import or write templates, preview
one on 5 sample rows as you type, then apply the chosen ones (in turn, at random with a seed, or all) or
build an SNI task. Public listeners: templates_source, templates_import, templates_open, templates_save,
templates_preview, templates_apply, templates_build_task.
"""
from __future__ import annotations

import os

import gradio as gr
import pandas as pd

from curation.services import template_store, template_tasks, templates
from curation.services.errors import InvalidInput, PermissionDenied
from curation.services.permissions import Role
from curation.templates import HOW, Template, compile_template
from curation.ui.context import AppContext
from curation.ui import templates_views as views
from curation.ui.inputs import WholeNumber

TAB_TITLE = "Templates"
TAB_ORDER = 67  # after Import & export: a labelled dataset comes in there, then goes through templates here
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves


def build(ctx: AppContext) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### 1 · Labelled source and mapping")
            source = gr.Dropdown(label="Labelled source: a stored dataset, or hub:OWNER/NAME#SPLIT",
                                 choices=[], allow_custom_value=True,
                                 elem_id="templates-source")
            source_info = gr.Markdown("", elem_id="templates-source-info")
            rows = gr.Dataframe(interactive=False, wrap=True, max_height=240, elem_id="templates-rows")
            fields = gr.Textbox(label="Field mapping: one `template field = source column` per line "
                                      "(or = {{ jinja }} over the row's columns)", lines=3,
                                placeholder="premise = instruction\nhypothesis = input\nlabel = output",
                                elem_id="templates-fields")
            label_field = gr.Textbox(label="Label field (the template's)", value="label",
                                     elem_id="templates-label-field")
            labels = gr.Dataframe(headers=views.LABEL_COLUMNS, interactive=True, wrap=True,
                                  label="Labels: each source value, its rows, the id the template expects, the "
                                        "answer choice that id names", elem_id="templates-labels")
            refresh_btn = gr.Button("Read the source and its labels", elem_id="templates-read-source")
        with gr.Column(scale=3):
            gr.Markdown("### 2 · Templates")
            with gr.Row():
                collection = gr.Dropdown(label="Collection", choices=[], allow_custom_value=True,
                                         elem_id="templates-collection")
                opened = gr.Dropdown(label="Open a template", choices=[], allow_custom_value=True,
                                     elem_id="templates-open")
            with gr.Accordion("Import PromptSource templates.yaml or FLAN templates.py", open=False):
                upload = gr.File(label="templates.yaml / templates.py", type="filepath",
                                 file_types=[".yaml", ".yml", ".py"], elem_id="templates-upload")
                with gr.Row():
                    flan_task = gr.Textbox(label="FLAN task (e.g. rte)", elem_id="templates-flan-task")
                    options = gr.Textbox(label="FLAN options in label order, | between", placeholder="yes | no",
                                         elem_id="templates-flan-options")
                import_btn = gr.Button("Import templates", elem_id="templates-import")
            name = gr.Textbox(label="Name", elem_id="templates-name")
            jinja = gr.Code(label="Template (Jinja: prompt ||| target)", language="jinja2", lines=6,
                            elem_id="templates-jinja")
            choices = gr.Textbox(label="Answer choices (Jinja, ||| between)", elem_id="templates-choices")
            with gr.Row():
                original = gr.Checkbox(label="Original task", value=True, elem_id="templates-original")
                in_prompt = gr.Checkbox(label="Choices in prompt", elem_id="templates-in-prompt")
                metrics = gr.Textbox(label="Metrics", value="Accuracy", elem_id="templates-metrics")
            version = WholeNumber(visible=False, precision=0, label="version")
            with gr.Row():
                preview_btn = gr.Button("Preview on 5 rows", elem_id="templates-preview")
                save_btn = gr.Button("Save template", elem_id="templates-save")
            status = gr.Markdown("", elem_id="templates-status")
            preview = gr.HTML("", elem_id="templates-preview-box")
    gr.Markdown("### 3 · Apply")
    with gr.Row():
        # A dropdown that takes any id: a script applies stored templates by id without listing them first.
        chosen = gr.Dropdown(label="Templates to apply", choices=[], multiselect=True, allow_custom_value=True,
                             elem_id="templates-chosen", scale=3)
        with gr.Column(scale=2):
            target = gr.Textbox(label="Into dataset (created if new)", elem_id="templates-target")
            how = gr.Radio([(label, key) for key, label in HOW.items()], value="round_robin", label="How",
                           elem_id="templates-how")
            with gr.Row():
                seed = WholeNumber(label="Seed", value=0, precision=0, elem_id="templates-seed")
                cap = WholeNumber(label="Cap: rows of the source (0: all)", value=0, precision=0,
                                  elem_id="templates-cap")
    apply_btn = gr.Button("Apply templates", variant="primary", elem_id="templates-apply")
    applied = gr.Markdown("", elem_id="templates-applied")
    with gr.Accordion("…or build a Super-NaturalInstructions task with the open template", open=False):
        with gr.Row():
            task_name = gr.Textbox(label="Task name", elem_id="templates-task-name")
            definition = gr.Textbox(label="Definition (written once)", lines=2, elem_id="templates-definition")
        examples = gr.Dataframe(headers=views.EXAMPLE_COLUMNS, interactive=True, wrap=True, row_count=3,
                                label="Rows as examples (positive or negative)", elem_id="templates-examples")
        task_btn = gr.Button("Validate and save the task", elem_id="templates-build-task")
        task_report = gr.Markdown("", elem_id="templates-task-report")

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def picker_updates(actor, wanted_collection):
        with ctx.session() as session:
            names = template_store.collections(session, actor)
            listed = views.template_choices(template_store.list_templates(session, actor, wanted_collection)
                                            if wanted_collection else [])
        return gr.update(choices=names, value=wanted_collection), gr.update(choices=listed), gr.update(choices=listed)

    def read_source(session, actor, name):
        if not (name or "").strip():
            raise InvalidInput("choose a labelled source first")
        if name.strip().startswith("hub:"):
            token = ctx.settings.hf_token or os.environ.get("HF_TOKEN") or None
            return templates.hub_source(actor, name, token=token)
        return templates.dataset_source(session, actor, name)

    @ctx.friendly
    def templates_source(name_v, fields_v, label_field_v, labels_v, editor_choices, request: gr.Request):
        """The source's size, columns and first rows, and each label value beside its id and answer choice."""
        actor = curator(request)
        mapping = views.mapping_from(fields_v, label_field_v, labels_v)
        with ctx.session() as session:
            found = read_source(session, actor, name_v)
        shown_choices = views.fixed_choices(Template(name="choices", jinja="|||", answer_choices=editor_choices or None))
        table = (views.label_frame(found, mapping, label_field_v.strip(), shown_choices,
                                   mapping.labels.get(label_field_v.strip()))
                 if (label_field_v or "").strip() else gr.skip())
        line = views.source_line(found)
        if isinstance(table, pd.DataFrame) and table.empty:
            line += f" · no row has the label field '{label_field_v.strip()}' yet: map it to a column"
        return line, views.source_frame(found), table

    @ctx.friendly
    def templates_import(path, task_v, options_v, request: gr.Request):
        """Store the templates of an uploaded templates.yaml or FLAN templates.py (changed ones: a new version)."""
        actor = curator(request)
        if not path:
            raise InvalidInput("drop a templates.yaml or a FLAN templates.py first")
        chosen_options = [o.strip() for o in (options_v or "").split("|") if o.strip()] or None
        with ctx.session() as session:
            report = template_store.import_templates(session, actor, path, flan_task=(task_v or "").strip() or None,
                                                     options=chosen_options)
        where = report.templates[0].collection if report.templates else None
        line = (f"Imported {len(report.templates)} templates into **{where}**: {report.created} new, "
                f"{report.changed} changed (new version), {report.unchanged} unchanged.")
        return (line, *picker_updates(actor, where))

    @ctx.friendly
    def templates_collection(collection_v, request: gr.Request):
        return picker_updates(curator(request), collection_v)[1:]

    @ctx.friendly
    def templates_open(template_id, request: gr.Request):
        """The stored template into the editor."""
        actor = curator(request)
        if not template_id:
            return tuple(gr.skip() for _ in editor_outputs)
        with ctx.session() as session:
            [found] = template_store.get_templates(session, actor, [int(template_id)])
        return (found.collection, found.name, found.jinja, found.answer_choices or "", bool(found.original_task),
                bool(found.choices_in_prompt), ", ".join(found.metrics), found.version,
                f"Opened {found.label} v{found.version} ({found.source}).")

    @ctx.friendly
    def templates_save(collection_v, name_v, jinja_v, choices_v, original_v, in_prompt_v, metrics_v, version_v,
                       request: gr.Request):
        """Save the editor's template: a new one at version 1, an edit one version up (checked against yours)."""
        actor = curator(request)
        mine = views.editor_template(collection_v, name_v, jinja_v, choices_v, original_v, in_prompt_v, metrics_v)
        with ctx.session() as session:
            exists = any(t.name == mine.name for t in template_store.list_templates(session, actor, mine.collection))
            saved = template_store.save_template(session, actor, mine,
                                                 expected_version=int(version_v) if exists and version_v else None)
        return (saved.version, f"Saved {saved.label} as version {saved.version}.",
                *picker_updates(actor, saved.collection))

    def preview_html(actor, source_v, fields_v, label_field_v, labels_v, collection_v, name_v, jinja_v, choices_v):
        mine = views.editor_template(collection_v, name_v or "unsaved", jinja_v, choices_v, True, False, "")
        mapping = views.mapping_from(fields_v, label_field_v, labels_v)
        with ctx.session() as session:
            shown = templates.preview(session, actor, read_source(session, actor, source_v), mine, mapping)
        return views.preview_html(mine, shown, compile_template(mine).fields, mapping.labels)

    @ctx.friendly
    def templates_preview(source_v, fields_v, label_field_v, labels_v, collection_v, name_v, jinja_v, choices_v,
                          request: gr.Request):
        """The editor's template (saved or not) on 5 sample rows of the source; nothing is written."""
        return preview_html(curator(request), source_v, fields_v, label_field_v, labels_v, collection_v, name_v,
                            jinja_v, choices_v)

    @ctx.friendly
    def preview_when_ready(source_v, fields_v, label_field_v, labels_v, collection_v, name_v, jinja_v, choices_v,
                           request: gr.Request):
        """The live preview as you type: quiet until there is a source and a template, and a fault (a line
        half-typed) is shown in the box rather than as a toast at every keystroke."""
        actor = curator(request)
        if not (source_v or "").strip() or not (jinja_v or "").strip():
            return gr.skip()
        try:
            return preview_html(actor, source_v, fields_v, label_field_v, labels_v, collection_v, name_v, jinja_v,
                                choices_v)
        except InvalidInput as fault:
            return views.problem_html(str(fault))

    @ctx.friendly
    def templates_apply(source_v, fields_v, label_field_v, labels_v, chosen_v, target_v, how_v, seed_v, cap_v,
                        request: gr.Request):
        """Records from every row of the source through the chosen templates, into the target dataset."""
        actor = curator(request)
        mapping = views.mapping_from(fields_v, label_field_v, labels_v)
        if not chosen_v:
            raise InvalidInput("tick at least one template to apply")
        with ctx.session() as session:
            chosen_templates = template_store.get_templates(session, actor, [int(i) for i in chosen_v])
            report = templates.apply(session, actor, read_source(session, actor, source_v), chosen_templates,
                                     mapping, dataset=target_v, how=how_v or "round_robin", seed=int(seed_v or 0),
                                     cap=int(cap_v) if cap_v else None)
        return views.report_markdown(report)

    @ctx.friendly
    def templates_build_task(source_v, fields_v, label_field_v, labels_v, opened_v, task_name_v, definition_v,
                             examples_v, target_v, cap_v, request: gr.Request):
        """An SNI task from the source through the open template, saved only if the SNI validator passes it."""
        actor = curator(request)
        mapping = views.mapping_from(fields_v, label_field_v, labels_v)
        if not opened_v:
            raise InvalidInput("open a saved template first: the task's instances are made with it")
        plan = template_tasks.TaskPlan(dataset=(target_v or "").strip(), name=task_name_v or "",
                                       definition=definition_v or "", examples=views.examples_from(examples_v),
                                       cap=int(cap_v) if cap_v else None)
        with ctx.session() as session:
            [template] = template_store.get_templates(session, actor, [int(opened_v)])
            build = template_tasks.build_task(session, actor, read_source(session, actor, source_v), template,
                                              mapping, plan)
        return (f"Saved task **#{build.view.id} {build.view.form.name}** in {plan.dataset}: "
                f"{len(build.view.form.instances):,} instances, {len(build.view.form.examples)} examples, "
                f"{build.duplicates_skipped:,} rows skipped as duplicates. It passes the SNI rules.")

    @ctx.friendly
    def open_tab(request: gr.Request):
        actor = ctx.actor(request)
        try:
            ctx.require(actor, Role.curator)
        except PermissionDenied:  # the tab is hidden from annotators: no error on their every page load
            return gr.skip(), gr.skip()
        with ctx.session() as session:
            names = template_store.collections(session, actor)
        return gr.update(choices=ctx.datasets()), gr.update(choices=names)

    private = dict(api_visibility="private", show_progress="hidden")
    source_inputs = [source, fields, label_field, labels]
    editor = [collection, name, jinja, choices, original, in_prompt, metrics]
    editor_outputs = [*editor, version, status]
    pickers = [collection, opened, chosen]
    preview_inputs = [*source_inputs, collection, name, jinja, choices]
    # The public listeners first: a private one wired earlier with the same function would take its api_name.
    refresh_btn.click(templates_source, [*source_inputs, choices], [source_info, rows, labels],
                      api_name="templates_source")
    import_btn.click(templates_import, [upload, flan_task, options], [status, *pickers], api_name="templates_import")
    opened_event = opened.input(templates_open, [opened], editor_outputs, api_name="templates_open")
    save_btn.click(templates_save, [*editor, version], [version, status, *pickers], api_name="templates_save")
    preview_btn.click(templates_preview, preview_inputs, [preview], api_name="templates_preview")
    apply_btn.click(templates_apply, [*source_inputs, chosen, target, how, seed, cap], [applied],
                    api_name="templates_apply", concurrency_limit=1, concurrency_id="templates-apply")
    task_btn.click(templates_build_task, [*source_inputs, opened, task_name, definition, examples, target, cap],
                   [task_report], api_name="templates_build_task")
    source.input(templates_source, [*source_inputs, choices], [source_info, rows, labels], **private)
    collection.input(templates_collection, [collection], [opened, chosen], **private)
    opened_event.then(preview_when_ready, preview_inputs, [preview], **private)
    jinja.input(preview_when_ready, preview_inputs, [preview], trigger_mode="always_last", **private)
    ctx.on_load(open_tab, None, [source, collection])
