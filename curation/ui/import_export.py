"""The export panel of the Import & export tab: a dataset's records in a training format, as a file to download.

Filtered by status, category and quality flag; the records stream from the database to the file (the page and the
other users are not held while a large export is written) and the file is offered by a download button.
Public listeners: import_export_categories, import_export.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from curation.formats import EXPORT_FORMATS
from curation.services import exporting
from curation.services.browse import categories
from curation.services.permissions import Role
from curation.ui.context import AppContext

DOWNLOADS = Path(tempfile.gettempdir()) / "instruct-studio-downloads"
KEEP_SECONDS = 3600  # Gradio serves its own copy of a download; ours is only needed until it has made it
STATUSES = ["draft", "submitted", "approved", "rejected", "discarded"]


def download_folder() -> Path:
    """A new empty folder for one download; folders of earlier downloads older than KEEP_SECONDS are removed."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    for old in DOWNLOADS.iterdir():
        try:
            if time.time() - old.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # another worker removed it first
            continue
    return Path(tempfile.mkdtemp(dir=DOWNLOADS))


def build_export(ctx: AppContext) -> gr.Dropdown:
    """Build the panel; returns its dataset box, for the tab's page load to fill in."""
    gr.Markdown("### Export")
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, elem_id="export-dataset")
        format_box = gr.Radio(list(EXPORT_FORMATS), value="messages", label="Format", elem_id="export-format")
    with gr.Row():
        statuses = gr.CheckboxGroup(STATUSES, value=exporting.default_statuses(), label="Statuses",
                                    elem_id="export-status")
        category = gr.Dropdown(label="Category (empty: all)", choices=[""], value="", allow_custom_value=True,
                               elem_id="export-category")
        flags = [("fails any check", exporting.ANY_FLAG)] + [(name.replace("_", " "), name)
                                                             for name in exporting.export_flags()[1:]]
        flag = gr.Dropdown([("— every record —", ""), *flags], value="", label="Quality flag",
                           elem_id="export-flag")
    with gr.Row():
        run = gr.Button("Export", elem_id="export-run")
        download = gr.DownloadButton("Download", visible=False, elem_id="export-download")
    summary = gr.Markdown("", elem_id="export-summary")

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    @ctx.friendly
    def import_export_categories(name, request: gr.Request):
        """The categories of the dataset's records, for the category filter."""
        curator(request)
        with ctx.session() as session:
            found = categories(session, name) if name else []
        return gr.update(choices=["", *found], value="")

    @ctx.friendly
    def import_export(name, format_v, statuses_v, category_v, flag_v, request: gr.Request, progress=gr.Progress()):
        """Write the matching records to a file and offer it for download."""
        actor = curator(request)
        progress(0.0, desc="exporting")

        def written(done: int, total: int) -> None:
            progress((done, total), desc="records written", unit="records")

        with ctx.session() as session:
            exported = exporting.export_to_file(session, actor, dataset=name, format=format_v, statuses=statuses_v,
                                                category=(category_v or "").strip() or None, flag=flag_v or None,
                                                folder=download_folder(), progress=written)
        unit = exported.unit if exported.count == 1 else f"{exported.unit}s"
        line = f"Exported **{exported.count:,}** {unit} of {name} as {format_v}: `{exported.path.name}`."
        return gr.DownloadButton(f"Download {exported.path.name}", value=str(exported.path), visible=True), line

    dataset.change(import_export_categories, [dataset], [category], api_name="import_export_categories",
                   show_progress="hidden")
    run.click(import_export, [dataset, format_box, statuses, category, flag], [download, summary],
              api_name="import_export")
    return dataset
