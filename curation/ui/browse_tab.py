"""Browse: a server-side paginated table of records or tasks, filtered and sorted; a click opens the item."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from curation.quality.records import CHECKS
from curation.services import browse
from curation.services.annotation import InvalidInput
from curation.services.permissions import authorize
from curation.ui import near_duplicate_hint
from curation.ui.inputs import WholeNumber
from curation.ui.context import AppContext, open_item

TAB_TITLE = "Browse"
TAB_ORDER = 10
STATUSES = ["draft", "submitted", "approved", "rejected", "discarded"]
FLAG_CHOICES = [("Flagged or not", ""), ("Any flag", browse.ANY_FLAG)] + [
    (name.replace("_", " "), name) for name in CHECKS]  # named as the editor's checks panel names them
WRITTEN_BY_CHOICES = [("Anyone or any model", "")] + [(label, key) for key, label in browse.WRITTEN_BY.items()]


def build(ctx: AppContext) -> dict:
    with gr.Row():
        kind = gr.Radio(["Records", "Tasks"], value="Records", label="Show", scale=1, elem_id="browse-kind")
        dataset = gr.Dropdown(label="Dataset", choices=[("All datasets", "")], value="", scale=2,
                              allow_custom_value=True, elem_id="browse-dataset")
        status = gr.Dropdown(label="Status", choices=[("Any status", "")] + [(s, s) for s in STATUSES], value="",
                             scale=1, elem_id="browse-status")
        category = gr.Dropdown(label="Category", choices=[("Any category", "")], value="", allow_custom_value=True,
                               scale=2, elem_id="browse-category")
        author = gr.Dropdown(label="Author", choices=[("Anyone", "")], value="", scale=1,
                             allow_custom_value=True, elem_id="browse-author")
        flag = gr.Dropdown(label="Quality flag", choices=FLAG_CHOICES, value="", scale=1, elem_id="browse-flag")
        written_by = gr.Dropdown(label="Written by", choices=WRITTEN_BY_CHOICES, value="", scale=1,
                                 elem_id="browse-written-by")
    with gr.Row(elem_classes=["pager"]):
        text = gr.Textbox(label="Search text", placeholder="words in the instruction, input or output", scale=3,
                          elem_id="browse-text")
        meaning = gr.Checkbox(label="By meaning", value=False, scale=1, min_width=120, elem_id="browse-meaning",
                              info="closest first, in one dataset")
        sort = gr.Dropdown(label="Sort by", choices=list(browse.SORTS), value="Last updated", scale=1,
                           elem_id="browse-sort")
        page = WholeNumber(label="Page", value=1, precision=0, minimum=1, scale=1, elem_id="browse-page")
        with gr.Column(scale=1, min_width=160):
            previous_btn = gr.Button("◀ Previous", size="sm")
            next_btn = gr.Button("Next ▶", size="sm")
    info = gr.Markdown(elem_classes=["page-info"], elem_id="browse-info")
    table = gr.Dataframe(interactive=False, wrap=True, max_height=640, elem_id="browse-table",
                         column_widths=["6%", "33%", "24%", "9%", "9%", "8%", "11%"])
    gr.Markdown("Click a row to open it in the editor.", elem_classes=["hint"])

    @ctx.friendly
    def browse_page(kind, dataset, status, category, author, text, sort, page, flag, written_by="", meaning=False,
                    request: gr.Request = None):
        """One page (50 rows) of records or tasks that match the filters, with how many match in all.

        flag: a quality check's name, "any" for records failing any check (tasks: with such an instance).
        written_by: people, machine (any machine-drafted text), unreviewed, edited or imported; "" for all."""
        authorize(ctx.actor(request), "view")
        nearest = None
        if meaning and (text or "").strip() and kind != "Tasks":
            if not dataset:
                raise InvalidInput("choose a dataset to search it by meaning")
            nearest = near_duplicate_hint.nearest_by_meaning(ctx, dataset, text)
            if nearest is None:
                return (pd.DataFrame(), 1, f"The meaning index of {dataset} is still being built: search again in a "
                        "moment (at 50,000 records, about a minute the first time).")
        query = browse.BrowseQuery(kind="tasks" if kind == "Tasks" else "records", dataset=dataset or None,
                                   status=status or None, category=category or None, author=author or None,
                                   text=text or None, flag=flag or None, written_by=written_by or None,
                                   sort=sort or "Last updated",
                                   page=int(page or 1), nearest=nearest)
        with ctx.session() as session:
            result = browse.browse(session, query)
        first = (result.page - 1) * query.page_size + 1 if result.total else 0
        last = first + len(result.rows) - 1 if result.rows else 0
        summary = (f"**{first:,}–{last:,}** of **{result.total:,}** {query.kind}"
                   f" · page {result.page:,} of {result.pages:,}")
        if nearest is not None:
            summary += f" · the {len(nearest):,} closest in meaning to the search text, closest first"
        if result.past_end:
            summary += f" · page {result.asked:,} does not exist; showing the last page, {result.page:,}"
        frame = pd.DataFrame(result.rows, columns=result.columns)
        return frame, result.page, summary

    @ctx.friendly
    def filter_choices(request: gr.Request):
        ctx.actor(request)
        with ctx.session() as session:
            cats = browse.categories(session)
            people = browse.authors(session)
        datasets = ctx.datasets()
        return (gr.update(choices=[("All datasets", "")] + [(d, d) for d in datasets]),
                gr.update(choices=[("Any category", "")] + [(c, c) for c in cats]),
                gr.update(choices=[("Anyone", "")] + [(p, p) for p in people]))

    def open_row(kind_v, event: gr.SelectData):
        row = event.row_value or []
        if not row:
            return gr.skip(), gr.skip()
        target = "task" if kind_v == "Tasks" else "record"
        return open_item(target, row[0])

    # The flag, then who wrote it, come last so that scripts written before them still call /browse with eight
    # (or nine) values.
    inputs = [kind, dataset, status, category, author, text, sort, page, flag, written_by, meaning]
    outputs = [table, page, info]
    private = dict(api_visibility="private", show_progress="hidden")
    for control in (kind, dataset, status, category, author, flag, written_by, sort, meaning):
        control.input(lambda *a: 1, None, page, **private).then(browse_page, inputs, outputs, **private)
    text.submit(lambda: 1, None, page, **private).then(browse_page, inputs, outputs, **private)
    page.submit(browse_page, inputs, outputs, api_name="browse", show_progress="hidden", queue=False)
    previous_btn.click(lambda p: max(1, int(p or 1) - 1), page, page, **private).then(
        browse_page, inputs, outputs, **private)
    next_btn.click(lambda p: int(p or 1) + 1, page, page, **private).then(browse_page, inputs, outputs, **private)
    outputs_open = [ctx.open_request, ctx.tabs]
    table.select(open_row, [kind], outputs_open, **private)
    ctx.on_load(filter_choices, None, [dataset, category, author])
    ctx.on_load(browse_page, inputs, outputs)
    return {}
