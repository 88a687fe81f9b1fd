"""The guidelines beside the editors and in review (read-only), and the curators' editor for them."""
from __future__ import annotations

import html

import gradio as gr

from curation import guidelines as rules_of
from curation.services import guidelines as guidelines_service
from curation.ui.context import AppContext

CSS = """
.guidelines { font-size: .9rem; max-height: 420px; overflow-y: auto; padding-right: 4px; }
.guidelines h1, .guidelines h2, .guidelines h3 { font-size: 1rem; margin: .6em 0 .2em; scroll-margin-top: 8px; }
.guidelines :target { background: #fef3c7; }
.guidelines-none { font-style: italic; opacity: .75; }
"""


def panel_html(view: guidelines_service.GuidelinesView | None, dataset: str | None) -> str:
    """The panel's content: the guidelines in force with their version, or a line saying there are none."""
    if not dataset:
        return '<div class="guidelines guidelines-none">Choose a dataset to see its guidelines.</div>'
    if view is None or not view.version:
        return (f'<div class="guidelines guidelines-none">{html.escape(dataset)} has no guidelines yet; a curator '
                "writes them in Review.</div>")
    when = f" by {html.escape(view.written_by or 'someone')}, {view.written_at:%Y-%m-%d}" if view.written_at else ""
    return (f'<div class="guidelines"><div class="hint">Version {view.version}{when}</div>'
            f"{rules_of.as_html(view.text)}</div>")


def attach_guidelines_panel(ctx: AppContext, *, dataset, where: str) -> gr.HTML:
    """A Guidelines accordion (placed here) that follows the `dataset` component; elem_id `{where}-guidelines`."""
    with gr.Accordion("Guidelines", open=True, elem_id=f"{where}-guidelines-box"):
        box = gr.HTML(panel_html(None, None), elem_id=f"{where}-guidelines", css_template=CSS)

    @ctx.friendly
    def show_guidelines(dataset_v, request: gr.Request):
        ctx.actor(request)  # whoever may open the editor may read the rules
        if not dataset_v or dataset_v not in ctx.datasets():
            return panel_html(None, None)
        with ctx.session() as session:
            return panel_html(guidelines_service.current_guidelines(session, dataset=dataset_v), dataset_v)

    dataset.change(show_guidelines, [dataset], [box], api_visibility="private", show_progress="hidden",
                   trigger_mode="always_last")
    return box


def attach_guidelines_editor(ctx: AppContext, *, dataset, panel: gr.HTML | None = None) -> None:
    """The curators' editor (placed here): the Markdown, a reason, Save, and the versions to restore from;
    `panel` (a guidelines panel on the same page) shows a saved version at once."""
    with gr.Accordion("Edit the guidelines", open=False, elem_id="guidelines-editor"):
        gr.Markdown("Markdown. A heading is a rule; name a check in backticks in a heading (`empty_output`) and "
                    "the editors' checks link to that rule. Saving writes a new version; the card publishes the "
                    "version in force.", elem_classes=["hint"])
        text = gr.Textbox(label="Guidelines", lines=14, max_lines=40, elem_id="guidelines-text")
        reason = gr.Textbox(label="What changed (optional)", elem_id="guidelines-reason")
        with gr.Row():
            save = gr.Button("Save guidelines", variant="primary", size="sm", elem_id="guidelines-save")
            versions = gr.Dropdown(label="Versions", choices=[], elem_id="guidelines-versions", scale=2)
            restore = gr.Button("Load this version", size="sm", elem_id="guidelines-restore")
        status = gr.Markdown(elem_id="guidelines-status")
        version = gr.Number(visible=False, precision=0, value=0, label="guidelines version")

    def _choices(session, dataset_v):
        return [(f"v{v.version} · {v.written_by or '?'} · {v.written_at:%Y-%m-%d %H:%M}"
                 + (f" · {v.reason}" if v.reason else ""), v.version)
                for v in guidelines_service.guidelines_history(session, dataset=dataset_v)]

    @ctx.friendly
    def load(dataset_v, request: gr.Request):
        ctx.actor(request)
        if not dataset_v or dataset_v not in ctx.datasets():
            return "", 0, gr.update(choices=[], value=None), ""
        with ctx.session() as session:
            view = guidelines_service.current_guidelines(session, dataset=dataset_v)
            choices = _choices(session, dataset_v)
        said = f"Version {view.version} in force." if view.version else "No guidelines yet."
        return view.text, view.version, gr.update(choices=choices, value=None), said

    @ctx.friendly
    def save_text(dataset_v, text_v, reason_v, version_v, request: gr.Request):
        actor = ctx.actor(request)
        if not dataset_v:
            raise guidelines_service.InvalidInput("choose a dataset first")
        with ctx.session() as session:
            view = guidelines_service.save_guidelines(session, actor, dataset=dataset_v, text=text_v or "",
                                                      expected_version=int(version_v or 0), reason=reason_v)
            choices = _choices(session, dataset_v)
        gr.Info(f"Guidelines saved as version {view.version}.")
        shown = [panel_html(view, dataset_v)] if panel is not None else []
        return view.version, gr.update(choices=choices, value=None), f"Version {view.version} in force.", "", *shown

    @ctx.friendly
    def load_version(dataset_v, chosen, request: gr.Request):
        ctx.actor(request)
        if not dataset_v or chosen in (None, ""):
            raise guidelines_service.InvalidInput("choose a version to load")
        with ctx.session() as session:
            view = guidelines_service.guidelines_version(session, dataset=dataset_v, version=int(chosen))
        return view.text, (f"Version {view.version} loaded into the editor: **Save guidelines** to put it back "
                           "in force (as a new version).")

    dataset.change(load, [dataset], [text, version, versions, status], api_visibility="private",
                   show_progress="hidden")
    save.click(save_text, [dataset, text, reason, version],
               [version, versions, status, reason, *([panel] if panel is not None else [])], api_name="guidelines_save")
    restore.click(load_version, [dataset, versions], [text, status], api_visibility="private")
