"""Import & export: bring files or a Hub dataset into a dataset, and download a dataset in a training format.

Drop files (every format the CLI reads) to see the format detected and the first records as they will be stored;
map a table's columns (the mapping is remembered per dataset); import in one transaction with a progress bar; read
the report and download the rejected rows as CSV. The same rules as the CLI: nothing is written on any refusal, and
Strict refuses the whole import for one bad row. Public listeners: import_preview, import_remembered_mapping,
import_files, import_hub, and the export panel's (curation/ui/import_export.py).
"""
from __future__ import annotations

import os

import gradio as gr
import pandas as pd

from curation.formats import IMPORT_FORMATS
from curation.hub_import import HubImportError, HubSource, parse_source
from curation.services import importing
from curation.services.errors import InvalidInput, PermissionDenied
from curation.services.importing import MAPPED_FIELDS, FilePreview, PageImport
from curation.services.permissions import Role
from curation.ui.context import AppContext
from curation.ui.import_export import build_export, download_folder
from curation.ui.safe import esc

TAB_TITLE = "Import & export"
TAB_ORDER = 65
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
NO_FILES = "Drop one or more files: JSON, JSONL, CSV, TSV or Parquet records, or a Super-NaturalInstructions task."
PREVIEW_COLUMNS = ["File", "Row", "Instruction", "Input", "Output", "System", "Category"]
NOT_MAPPED = ("(none)", "")
PREVIEW_WIDTHS = ["14%", "6%", "30%", "14%", "18%", "8%", "10%"]
SHOWN_REJECTED = 200  # rows listed in the page; the CSV holds them all


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def _short(text: str | None, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detected_markdown(previews: list[FilePreview]) -> str:
    """One line per file: the format detected and the counts, or what stops it from being imported."""
    if not previews:
        return NO_FILES
    lines = []
    for p in previews:
        if p.problem:
            lines.append(f"- **{esc(p.name)}** — ⚠ {esc(p.problem)}")
            continue
        first = f" (first: {esc(p.rejected[0])})" if p.rejected else ""
        lines.append(f"- **{esc(p.name)}** — `{esc(p.format)}`: {_count(p.rows_read, 'row')} read, "
                     f"{_count(p.records, 'record')}, {len(p.rejected):,} rejected{first}")
    return "\n".join(lines)


def preview_frame(previews: list[FilePreview]) -> pd.DataFrame:
    """The first records of each file as they will be stored."""
    rows = [[p.name, d.source_line, _short(d.instruction), _short(d.input), _short(d.output), _short(d.system_prompt),
             d.category or ""] for p in previews for d in p.sample]
    return pd.DataFrame(rows, columns=PREVIEW_COLUMNS)


def report_html(result: PageImport, dataset: str) -> str:
    """Counts per source, then each rejected row with its location and reason (the first SHOWN_REJECTED)."""
    if result.report is None:
        head = f'<div class="import-refused"><b>Nothing was imported:</b> {esc(result.refused)}.</div>'
    else:
        r = result.report
        new = " (a new dataset)" if result.created else ""
        head = (f'<div class="import-done"><b>Imported {_count(r.imported, "record")} into {esc(dataset)}</b>{new}: '
                f"{_count(r.duplicates_skipped, 'duplicate')} skipped, {_count(r.rejected, 'row')} rejected.</div>")
        cells = "".join(f"<tr><td>{esc(importing.source_name(f.path))}</td><td>{esc(f.format)}</td>"
                        f"<td>{f.rows_read:,}</td><td>{f.imported:,}</td><td>{f.duplicates_skipped:,}</td>"
                        f"<td>{len(f.rejected):,}</td></tr>" for f in r.files)
        head += ("<table class='import-files'><tr><th>Source</th><th>Format</th><th>Rows read</th><th>Imported</th>"
                 f"<th>Duplicates skipped</th><th>Rejected</th></tr>{cells}</table>")
    if not result.rejected:
        return head
    rows = "".join(f"<tr><td>{esc(s)}</td><td>{esc(where)}</td><td>{esc(why)}</td></tr>"
                   for s, where, why in result.rejected[:SHOWN_REJECTED])
    more = (f"<div>… and {len(result.rejected) - SHOWN_REJECTED:,} more in the CSV.</div>"
            if len(result.rejected) > SHOWN_REJECTED else "")
    return (f"{head}<table class='import-rejected'><tr><th>Source</th><th>Where</th><th>Why it was rejected</th></tr>"
            f"{rows}</table>{more}")


def build(ctx: AppContext) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(label="Files to import", file_count="multiple", type="filepath", elem_id="import-files")
            with gr.Row():
                format_box = gr.Dropdown(list(IMPORT_FORMATS), value="auto", label="Format (auto: detected)",
                                         elem_id="import-format")
                dataset = gr.Dropdown(label="Target dataset (type a new name to create one)", choices=[],
                                      allow_custom_value=True, elem_id="import-dataset")
            detected = gr.Markdown(NO_FILES, elem_id="import-detected")
            with gr.Group(elem_id="import-mapping"):
                gr.Markdown("**Table columns** — which column becomes each field (remembered for the dataset)")
                with gr.Row():
                    mapping = [gr.Dropdown([NOT_MAPPED], value="", label=field, allow_custom_value=True, min_width=110,
                                           elem_id=f"import-map-{field}") for field in MAPPED_FIELDS]
            preview = gr.Dataframe(preview_frame([]), label="First records, as they will be stored", interactive=False,
                                   wrap=True, column_widths=PREVIEW_WIDTHS, elem_id="import-preview")
            with gr.Row():
                strict = gr.Checkbox(label="Strict: import nothing if any row is rejected", elem_id="import-strict")
                keep = gr.Checkbox(label="Keep exact duplicates (for a curator to resolve)",
                                   elem_id="import-keep-duplicates")
            run = gr.Button("Import files", variant="primary", elem_id="import-run")
        with gr.Column(scale=2):
            gr.Markdown("**From the Hugging Face Hub** (the format, mapping and options on the left apply)")
            hub_repo = gr.Textbox(label="Dataset repo id", placeholder="owner/name", elem_id="import-hub-repo")
            hub_config = gr.Textbox(label="Config (empty: the dataset's only one)", elem_id="import-hub-config")
            hub_split = gr.Textbox(label="Split", value="train", elem_id="import-hub-split")
            hub_revision = gr.Textbox(label="Revision: branch, tag or commit (empty: the default branch)",
                                      elem_id="import-hub-revision")
            hub_token = gr.Textbox(label="Token for a private repo (used for this import only; HF_TOKEN if empty)",
                                   type="password", elem_id="import-hub-token")
            hub_run = gr.Button("Import from the Hub", elem_id="import-hub-run")
    report = gr.HTML("", elem_id="import-report")
    rejected_download = gr.DownloadButton("Download the rejected rows (CSV)", visible=False,
                                          elem_id="import-rejected-download")
    export_dataset = build_export(ctx)

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def chosen_mapping(*columns) -> dict[str, str]:
        return dict(zip(MAPPED_FIELDS, columns))

    def outcome(result: PageImport, name: str) -> tuple:
        """(report, rejected-rows button, dataset choices of the import and the export) for the page."""
        button = gr.DownloadButton(visible=False, value=None)
        if result.rejected:
            path = importing.write_rejected_csv(result.rejected, download_folder() / "rejected-rows.csv")
            button = gr.DownloadButton(f"Download the rejected {_count(len(result.rejected), 'row')} (CSV)",
                                       value=str(path), visible=True)
        names = ctx.datasets()
        return report_html(result, name), button, gr.update(choices=names), gr.update(choices=names)

    def bar(progress, what: str):
        def update(done: int, total: int | None) -> None:
            progress((done, total) if total else 0.0, desc=f"{what} {done:,}" + (f" of {total:,}" if total else ""))
        return update

    @ctx.friendly
    def import_preview(paths, format_v, instruction_c, input_c, output_c, system_c, category_c, request: gr.Request):
        """The format detected in each file, its counts, and its first records as stored; nothing is written."""
        actor = curator(request)
        columns = chosen_mapping(instruction_c, input_c, output_c, system_c, category_c)
        previews = importing.preview_files(actor, paths or [], format=format_v or "auto", mapping=columns)
        found = sorted({c for p in previews for c in p.columns or []})
        choices = [gr.update(choices=[NOT_MAPPED, *found]) for _ in MAPPED_FIELDS]
        return (detected_markdown(previews), preview_frame(previews), *choices)

    @ctx.friendly
    def import_remembered_mapping(name, instruction_c, input_c, output_c, system_c, category_c, request: gr.Request):
        """The mapping boxes with the columns the dataset's last table import used; the rest as they are."""
        actor = curator(request)
        with ctx.session() as session:
            remembered = importing.remembered_mapping(session, actor, name)
        shown = chosen_mapping(instruction_c, input_c, output_c, system_c, category_c)
        return tuple(remembered.get(field) or shown.get(field) or "" for field in MAPPED_FIELDS)

    @ctx.friendly
    def import_files(paths, name, format_v, strict_v, keep_v, instruction_c, input_c, output_c, system_c, category_c,
                     request: gr.Request, progress=gr.Progress()):
        """Import the files in one transaction; the report, and the rejected rows as a CSV to download."""
        actor = curator(request)
        columns = chosen_mapping(instruction_c, input_c, output_c, system_c, category_c)
        progress(0.0, desc="reading the files")
        with ctx.session() as session:
            result = importing.import_for_page(session, actor, dataset=name, sources=list(paths or []),
                                               format=format_v or "auto", mapping=columns, strict=bool(strict_v),
                                               keep_duplicates=bool(keep_v), progress=bar(progress, "importing"))
        return outcome(result, (name or "").strip())

    @ctx.friendly
    def import_hub(repo_v, config_v, split_v, revision_v, token_v, name, format_v, strict_v, keep_v, instruction_c,
                   input_c, output_c, system_c, category_c, request: gr.Request, progress=gr.Progress()):
        """Import a Hub dataset's split at its resolved commit, which each record keeps in its provenance."""
        actor = curator(request)
        columns = chosen_mapping(instruction_c, input_c, output_c, system_c, category_c)
        source = hub_source(repo_v, config_v, split_v, revision_v)
        token = (token_v or "").strip() or ctx.settings.hf_token or os.environ.get("HF_TOKEN") or None
        progress(0.0, desc=f"resolving {source.label}")
        with ctx.session() as session:
            result = importing.import_for_page(session, actor, dataset=name, sources=[source], token=token,
                                               format=format_v or "auto", mapping=columns, strict=bool(strict_v),
                                               keep_duplicates=bool(keep_v), progress=bar(progress, "importing"),
                                               reading=bar(progress, "rows read from the Hub:"))
        return outcome(result, (name or "").strip())

    @ctx.friendly
    def open_tab(request: gr.Request):
        """For curators and admins: the dataset names; nothing for anyone else (the tab is hidden from them)."""
        actor = ctx.actor(request)  # nobody signed in: refused, as every listener refuses
        try:
            ctx.require(actor, Role.curator)
        except PermissionDenied:
            return gr.skip(), gr.skip()
        names = gr.update(choices=ctx.datasets())
        return names, names

    options = [dataset, format_box, strict, keep, *mapping]
    results = [report, rejected_download, dataset, export_dataset]
    shown = [detected, preview, *mapping]
    gr.on([files.change, format_box.change, *[m.input for m in mapping]], import_preview,
          [files, format_box, *mapping], shown, api_name="import_preview", show_progress_on=[detected])
    dataset.change(import_remembered_mapping, [dataset, *mapping], mapping, api_name="import_remembered_mapping",
                   show_progress="hidden").then(import_preview, [files, format_box, *mapping], shown,
                                                api_visibility="private", show_progress="hidden")
    run.click(import_files, [files, *options], results, api_name="import_files")
    hub_run.click(import_hub, [hub_repo, hub_config, hub_split, hub_revision, hub_token, *options], results,
                  api_name="import_hub")
    ctx.on_load(open_tab, None, [dataset, export_dataset])


def hub_source(repo: str | None, config: str | None, split: str | None, revision: str | None) -> HubSource:
    """The Hub source the form names; InvalidInput in words when there is no repo id, or it is not owner/name."""
    repo = (repo or "").strip().removeprefix("hub:")
    if not repo:
        raise InvalidInput("type the Hub dataset's repo id, like owner/name")
    revision = (revision or "").strip()
    try:
        return parse_source(f"hub:{repo}" + (f"@{revision}" if revision else ""), config=config, split=split)
    except HubImportError:
        raise InvalidInput(f"{repo!r} is not a Hub dataset's repo id: write it as owner/name") from None
