"""Diversity: near-duplicate groups to resolve, the map of the data by meaning, coverage and quality flags.

Public listeners (scriptable with gradio_client): diversity_run, diversity_groups, diversity_keep_one,
diversity_not_duplicates, diversity_merge, diversity_undo, diversity_coverage, diversity_flags. Those that show
groups take, last and optional, a generation job's id: only the groups holding a record that job added.
"""
from __future__ import annotations

import functools
import html
from dataclasses import asdict

import gradio as gr

from curation import dedup
from curation.embeddings import ModelUnavailableError
from curation.services import coverage as coverage_service
from curation.services import dedup as dedup_service
from curation.services import generation
from curation.services.permissions import authorize
from curation.ui import diversity_plots as plots
from curation.ui import distributed_panel
from curation.ui import diversity_map
from curation.ui.inputs import WholeNumber
from curation.ui.context import AppContext
from curation.ui.near_duplicate_hint import forget_indexes, open_record_on_click, shared_embedder
from curation.ui.safe import text_markdown
from curation.services.permissions import Role

TAB_TITLE = "Diversity"
TAB_ORDER = 60
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
FIELDS = {"Instruction": "instruction", "Instruction + input": "instruction+input", "Whole record": "record"}
METHODS = {"Meaning (embeddings)": "semantic", "Wording (ROUGE-L, Self-Instruct)": "lexical"}
SEARCHES = {"Auto": "auto", "Cascade (fast)": "cascade", "Reference (every record)": "reference"}
DEFAULT_THRESHOLDS = {"semantic": dedup.DEFAULT_THRESHOLD, "lexical": dedup.SELF_INSTRUCT_ROUGE}


def _members(text: str | None) -> dict[int, int]:
    """The group's records and the versions the curator saw, from "12@3,15@1" (the hidden group field).

    A record given without its version is refused by the decision service."""
    members: dict[int, int] = {}
    for part in (text or "").replace("#", "").replace(" ", "").split(","):
        record_id, _, version = part.partition("@")
        if record_id.isdigit():
            members[int(record_id)] = int(version) if version.isdigit() else None
    return members


def _method(label: str | None) -> str:
    return METHODS.get(label or "", label if label in DEFAULT_THRESHOLDS else "semantic")


def _job(value) -> int | None:
    """The generation job the groups are narrowed to ("7", 7 or "Job 7 · …"), or None for every record."""
    text = str(value or "").strip().removeprefix("Job").strip().split(" ")[0]
    return int(text) if text.isdigit() else None


ALL_RECORDS = ("Every record", "")


def job_choices(jobs) -> list[tuple[str, str]]:
    return [ALL_RECORDS] + [(f"Job {j.id} · {generation.PIPELINES.get(j.pipeline, j.pipeline)} · "
                             f"{(j.spec or {}).get('dataset', '')} · {j.kept} kept", str(j.id)) for j in jobs]


def _said(fn):
    """A request the dedup services refuse (or a missing model) becomes its own message, not "something went wrong"."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (dedup_service.DedupError, ModelUnavailableError) as exc:
            message = str(exc)
            raise gr.Error(html.escape(message[:1].upper() + message[1:] + ".", quote=False),
                           print_exception=False) from None

    return wrapper


def build(ctx: AppContext) -> None:
    with gr.Row(elem_classes=["dv-controls"]):
        dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, scale=2, elem_id="diversity-dataset")
        method = gr.Radio(list(METHODS), value="Meaning (embeddings)", label="Compare by", scale=2,
                          elem_id="diversity-method")
        fields = gr.Radio(list(FIELDS), value="Instruction + input", label="What must match", scale=2,
                          elem_id="diversity-fields")
        threshold = gr.Slider(0.5, 1.0, value=dedup.DEFAULT_THRESHOLD, step=0.01, label="Similarity threshold",
                              scale=2, elem_id="diversity-threshold")
        search_mode = gr.Dropdown(list(SEARCHES), value="Auto", label="Search", scale=1, elem_id="diversity-search")
        with gr.Column(scale=1, min_width=170):
            run_btn = gr.Button("Find duplicates", variant="primary", elem_id="diversity-run")
            gr.Markdown("0.95: rewordings of one task · 0.90: same intent", elem_classes=["hint"])
    summary = gr.Markdown("Choose a dataset, then press **Find duplicates**.", elem_id="diversity-summary")
    with gr.Tabs(elem_classes=["dv-root"]):
        with gr.Tab("Duplicate groups", id="diversity-groups-tab"):
            with gr.Row():
                with gr.Column(scale=4, min_width=340):
                    job_filter = gr.Dropdown(label="Only what a generation job added", choices=[ALL_RECORDS],
                                             value="", allow_custom_value=True, elem_id="diversity-job")
                    groups_table = gr.Dataframe(interactive=False, wrap=True, max_height=560, show_label=False,
                                                column_widths=["40px", "84px", "64px", "92px", "auto"],
                                                elem_id="diversity-groups")
                    gr.Markdown("Most similar first. Click a group to see it side by side.", elem_classes=["hint"])
                with gr.Column(scale=7, elem_id="diversity-group-box"):
                    with gr.Row(equal_height=True):
                        previous_btn = gr.Button("◀ Previous group", size="sm")
                        next_btn = gr.Button("Next group ▶", size="sm")
                    # head: page styles for the tables (gr.Dataframe takes no CSS of its own).
                    group_view = gr.HTML(plots.group_html(None), elem_id="diversity-group", elem_classes=["dv-root"],
                                         css_template=plots.TAB_CSS, head=f"<style>{plots.PAGE_CSS}</style>")
                    with gr.Row(equal_height=True, elem_classes=["actions"]):
                        keep = gr.Dropdown(label="Record to keep", choices=[], allow_custom_value=True, scale=1,
                                           elem_id="diversity-keep")
                        keep_btn = gr.Button("Keep it, discard others", variant="primary", scale=1,
                                             elem_id="diversity-keep-one")
                        merge_btn = gr.Button("Merge into it", scale=1, elem_id="diversity-merge")
                        apart_btn = gr.Button("Not duplicates", scale=1, elem_id="diversity-not-duplicates")
                    group_ids = gr.Textbox(visible=False, label="group record ids")
                    index = WholeNumber(value=0, precision=0, visible=False, label="group index")
        with gr.Tab("Map", id="diversity-map-tab"):
            with gr.Row():
                color_by = gr.Radio(list(plots.COLOR_BY), value="Cluster", label="Colour by", scale=4,
                                    elem_id="diversity-color")
                with gr.Column(scale=1, min_width=170):
                    coverage_btn = gr.Button("Map and coverage", elem_id="diversity-coverage")
            coverage_line = gr.Markdown(elem_id="diversity-coverage-summary")
            map_plot = gr.Plot(plots.map_figure(None), show_label=False, elem_id="diversity-map")
            diversity_map.attach_lasso(ctx, dataset=dataset, curator=lambda request: curator(request))
            gr.Markdown("Hover a point to read its instruction; click it to open the record in the editor; drag a "
                        "lasso around points to list those records in Browse.", elem_classes=["hint"])
            map_timer = gr.Timer(diversity_map.POLL_SECONDS, active=False)
        with gr.Tab("Coverage", id="diversity-coverage-tab"):
            clusters_plot = gr.Plot(show_label=False)
            with gr.Row():
                category_plot = gr.Plot(show_label=False)
                verbs_plot = gr.Plot(show_label=False)
            with gr.Row():
                status_plot = gr.Plot(show_label=False)
                author_plot = gr.Plot(show_label=False)
        with gr.Tab("Quality flags", id="diversity-flags-tab"):
            with gr.Row():
                flags_plot = gr.Plot(show_label=False, scale=1)
                with gr.Column(scale=1):
                    flags_table = gr.HTML(elem_id="diversity-flags", elem_classes=["dv-root"],
                                          css_template=plots.TAB_CSS)
                    flags_btn = gr.Button("Refresh flags", size="sm", elem_id="diversity-flags-refresh")
        with gr.Tab("Decisions", id="diversity-decisions-tab"):
            decisions_table = gr.Dataframe(interactive=False, wrap=True, max_height=480, show_label=False,
                                           elem_id="diversity-decisions")
            with gr.Row(equal_height=True):
                undo_choice = gr.Dropdown(label="Decision to undo", choices=[], allow_custom_value=True, scale=3,
                                          elem_id="diversity-undo-choice")
                undo_btn = gr.Button("Undo it", variant="stop", scale=1, elem_id="diversity-undo")
    groups_state = gr.State([])
    report_state = gr.State(None)
    open_record_on_click(ctx, ".dv-root")

    # ---- handlers ------------------------------------------------------------------------------

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def groups_view(dataset_v, method_v, threshold_v, at=0, job_v=None):
        """(summary, table, group html, keep, ids, index, groups) of the latest search at the threshold."""
        method_v, job_id = _method(method_v), _job(job_v)
        with ctx.session() as session:
            run = dedup_service.latest_run(session, dataset=dataset_v, method=method_v)
            rerun = dedup_service.rerun_words(session, run) if run else None
            exact = dedup_service.exact_duplicate_groups(session, dataset=dataset_v, added_by=job_id)
            near = dedup_service.duplicate_groups(session, dataset=dataset_v, method=method_v,
                                                  threshold=float(threshold_v), added_by=job_id) if run else []
        groups = [asdict(g) for g in exact + near]
        pairs = sum(len(g["pairs"]) for g in groups if g["kind"] != "exact")
        word = {"semantic": "similarity ≥", "lexical": "ROUGE-L >"}[method_v]
        line = (f"**{len(near)}** near-duplicate group{'s' * (len(near) != 1)} ({pairs} pair{'s' * (pairs != 1)}) at "
                f"{word} **{float(threshold_v):.2f}** · **{len(exact)}** exact-duplicate group{'s' * (len(exact) != 1)}")
        if job_id is not None:
            line += f" · only groups with a record job {job_id} added"
        if run:
            line += (f" · last search over {run.record_count:,} records ({run.fields}) by {run.created_by or 'CLI'}, "
                     f"{run.created_at:%Y-%m-%d %H:%M} UTC, {run.seconds:.1f} s")
            if rerun:
                line += f" ({rerun})"
            for sentence in run.left_out or []:  # they quote record text: shown as text
                line += f" · {text_markdown(sentence)}"
        else:
            line += " · no search of this kind yet: press **Find duplicates**"
        return (line, plots.groups_frame(groups), *group_values(groups, at), groups)

    def group_values(groups, at):
        """(group html, keep dropdown, ids, index) for group number `at` (clamped)."""
        if not groups:
            return plots.group_html(None), gr.update(choices=[], value=None), "", 0
        at = max(0, min(int(at or 0), len(groups) - 1))
        group = groups[at]
        choices = [(f"#{r['id']} · {r['status']}", str(r["id"])) for r in group["records"]]
        return (plots.group_html(group, f"Group {at + 1} of {len(groups)}"),
                gr.update(choices=choices, value=str(group["keep_id"])),
                ",".join(f'{r["id"]}@{r["version"]}' for r in group["records"]), at)

    @ctx.friendly
    @_said
    def diversity_run(dataset_v, method_v, fields_v, threshold_v, job_v=None, mode_v=None,
                      request: gr.Request = None, progress=gr.Progress()):
        """Search the dataset for duplicates (embeddings or ROUGE-L), store the pairs, show the groups."""
        actor = curator(request)
        if not dataset_v:
            raise dedup_service.DedupError("choose a dataset first")
        method_v = _method(method_v)
        words = "Comparing" if method_v == "lexical" else "Embedding"

        def report(done, total):
            progress(done / max(total, 1), desc=f"{words} {done:,} of {total:,}")

        progress(0, desc="Loading the model" if method_v == "semantic" else "Starting")
        with ctx.session() as session:
            dedup_service.run_dedup(session, dataset=dataset_v, threshold=float(threshold_v),
                                    fields=FIELDS.get(fields_v, fields_v), lexical=method_v == "lexical",
                                    embedder=None if method_v == "lexical" else shared_embedder(ctx),
                                    by=actor.name, progress=report, mode=SEARCHES.get(mode_v, mode_v) or None)
        return (*groups_view(dataset_v, method_v, threshold_v, job_v=job_v), *decisions_view(dataset_v))

    @ctx.friendly
    @_said
    def diversity_groups(dataset_v, method_v, threshold_v, job_v=None, request: gr.Request = None):
        """The groups of the latest search at this threshold, most similar first (those job_v added to, if given)."""
        authorize(ctx.actor(request), "view")
        if not dataset_v:
            return ("Choose a dataset.", plots.groups_frame([]), *group_values([], 0), [])
        return groups_view(dataset_v, method_v, threshold_v, job_v=job_v)

    @ctx.friendly
    @_said
    def show_group(groups, at, request: gr.Request):
        authorize(ctx.actor(request), "view")
        return group_values(groups, at)

    @ctx.friendly
    def pick_group(groups, event: gr.SelectData, request: gr.Request):
        authorize(ctx.actor(request), "view")
        return show_group(groups, event.index[0] if event.index else 0, request)

    def previous_group(groups, at, request: gr.Request):
        return show_group(groups, int(at or 0) - 1, request)

    def next_group(groups, at, request: gr.Request):
        return show_group(groups, int(at or 0) + 1, request)

    def decide(decision):
        @ctx.friendly
        @_said
        def handler(dataset_v, ids, keep_v, method_v, threshold_v, at, job_v=None, request: gr.Request = None):
            actor = curator(request)
            keep_id = int(keep_v) if str(keep_v or "").isdigit() else None
            members = _members(ids)
            with ctx.session() as session:
                dedup_service.decide(session, dataset=dataset_v, record_ids=list(members), decision=decision,
                                     keep_id=None if decision == "not_duplicates" else keep_id, by=actor.name,
                                     versions={i: v for i, v in members.items() if v is not None})
            forget_indexes(ctx, dataset_v)
            gr.Info({"keep_one": "Kept one, discarded the rest.", "merge": "Merged into the kept record.",
                     "not_duplicates": "Marked as not duplicates."}[decision] + " Undo it under Decisions.")
            return (*groups_view(dataset_v, method_v, threshold_v, at, job_v), *decisions_view(dataset_v))

        handler.__name__ = f"diversity_{decision}"
        return handler

    def decisions_view(dataset_v):
        with ctx.session() as session:
            decisions = dedup_service.list_decisions(session, dataset=dataset_v)
        choices = plots.undo_choices(decisions)
        return plots.decisions_frame(decisions), gr.update(choices=choices, value=choices[0][1] if choices else None)

    @ctx.friendly
    @_said
    def diversity_undo(dataset_v, decision_v, method_v, threshold_v, job_v=None, request: gr.Request = None):
        """Put back what a decision changed; its records are grouped again."""
        actor = curator(request)
        if not str(decision_v or "").isdigit():
            raise dedup_service.DedupError("choose a decision to undo")
        with ctx.session() as session:
            dedup_service.undo_decision(session, decision_id=int(decision_v), by=actor.name)
        forget_indexes(ctx, dataset_v)
        gr.Info(f"Decision {int(decision_v)} undone.")
        return (*groups_view(dataset_v, method_v, threshold_v, job_v=job_v), *decisions_view(dataset_v))

    @ctx.friendly
    @_said
    def diversity_coverage(dataset_v, color_v, request: gr.Request):
        """The map of every live record (UMAP), clusters named by their words, and counts per category, status,
        author, verb. A map not laid out yet is computed in the background: until then the summary says so
        ("The map is being computed: N records, about M s") and the report is None."""
        actor = curator(request)
        if not dataset_v:
            raise dedup_service.DedupError("choose a dataset first")
        return diversity_map.coverage_view(ctx, dataset_v, color_v, by=actor.name)

    @ctx.friendly
    @_said
    def map_poll(dataset_v, color_v, request: gr.Request):
        """While a map is being computed: the words again, then the map once it is there."""
        curator(request)
        return diversity_map.poll_view(ctx, dataset_v, color_v)

    @ctx.friendly
    @_said
    def stored_map(dataset_v, color_v, shown, request: gr.Request):
        """A dataset just opened: its stored map, if it has one (nothing is computed)."""
        actor = ctx.actor(request)
        if not actor.reviews:  # the map is the curators'; an annotator opening the tab sees the groups only
            return tuple(gr.skip() for _ in coverage_out)
        return diversity_map.stored_view(ctx, dataset_v, color_v, shown)

    @ctx.friendly
    @_said
    def diversity_flags(dataset_v, request: gr.Request):
        """How many live records fail each quality check, with the first few of each."""
        authorize(ctx.actor(request), "view")
        if not dataset_v:
            return plots.flags_view(None)
        with ctx.session() as session:
            return plots.flags_view(coverage_service.quality_report(session, dataset=dataset_v))

    @ctx.friendly
    @_said
    def on_open(dataset_v, method_v, threshold_v, opened, job_v=None, request: gr.Request = None):
        """When the tab is first opened: the dataset names, then the first dataset's groups, decisions and flags."""
        if opened:
            return tuple(gr.skip() for _ in opened_outputs)
        ctx.actor(request)
        names = ctx.datasets()
        first = dataset_v if dataset_v in names else (names[0] if names else None)
        return (gr.update(choices=names, value=first), *dataset_chosen(first, method_v, threshold_v, job_v, request),
                True)

    @ctx.friendly
    @_said
    def dataset_chosen(dataset_v, method_v, threshold_v, job_v=None, request: gr.Request = None):
        jobs_update, job_v = job_filter_of(ctx.actor(request), dataset_v, job_v)
        return (*diversity_groups(dataset_v, method_v, threshold_v, job_v, request),
                *(decisions_view(dataset_v) if dataset_v else (plots.decisions_frame([]), gr.update(choices=[]))),
                *diversity_flags(dataset_v, request), *blank_coverage(), jobs_update)

    def job_filter_of(actor, dataset_v, job_v):
        """(the job filter's choices, the job still chosen): the dataset's generation jobs, for curators."""
        if not dataset_v or not actor.reviews:
            return gr.update(choices=[ALL_RECORDS], value=""), None
        with ctx.session() as session:
            choices = job_choices(generation.list_jobs(session, actor, dataset=dataset_v))
        chosen = str(_job(job_v)) if any(value == str(_job(job_v)) for _, value in choices[1:]) else ""
        return gr.update(choices=choices, value=chosen), chosen or None

    def blank_coverage():
        return (plots.map_figure(None), "", *plots.coverage_figures(None), None, gr.Timer(active=False))

    def method_chosen(method_v):
        method_v = _method(method_v)
        return (gr.update(value=DEFAULT_THRESHOLDS[method_v]),
                gr.update(value="Instruction" if method_v == "lexical" else "Instruction + input"))

    # ---- wiring --------------------------------------------------------------------------------

    view = [summary, groups_table, group_view, keep, group_ids, index, groups_state]
    decisions_out = [decisions_table, undo_choice]
    coverage_out = [map_plot, coverage_line, clusters_plot, category_plot, status_plot, author_plot, verbs_plot,
                    report_state, map_timer]
    private = dict(api_visibility="private", show_progress="hidden")
    heavy = dict(concurrency_limit=1, concurrency_id="diversity-heavy")  # two cores: one embedding run at a time
    # Public listeners first: a private one registered earlier would take the function's name as its api_name.
    flags_btn.click(diversity_flags, [dataset], [flags_plot, flags_table], api_name="diversity_flags",
                    show_progress="minimal")
    coverage_btn.click(diversity_coverage, [dataset, color_by], coverage_out, api_name="diversity_coverage",
                       show_progress_on=[map_plot], **heavy)
    run_btn.click(diversity_run, [dataset, method, fields, threshold, job_filter, search_mode],
                  [*view, *decisions_out],
                  api_name="diversity_run", show_progress_on=[summary], **heavy).success(
        diversity_flags, [dataset], [flags_plot, flags_table], **private).success(
        diversity_coverage, [dataset, color_by], coverage_out, show_progress_on=[map_plot], api_visibility="private",
        **heavy)
    threshold.release(diversity_groups, [dataset, method, threshold, job_filter], view, api_name="diversity_groups",
                      show_progress="hidden", trigger_mode="always_last")
    method.input(method_chosen, [method], [threshold, fields], **private).then(
        diversity_groups, [dataset, method, threshold, job_filter], view, **private)
    job_filter.input(diversity_groups, [dataset, method, threshold, job_filter], view, **private)
    dataset.input(dataset_chosen, [dataset, method, threshold, job_filter],
                  [*view, *decisions_out, flags_plot, flags_table, *coverage_out, job_filter], **private).then(
        stored_map, [dataset, color_by, report_state], coverage_out, **private)
    # once: a tick that finds the map reads it (seconds at 52k); the ticks meanwhile are dropped, not queued
    map_timer.tick(map_poll, [dataset, color_by], coverage_out, trigger_mode="once", **private)
    groups_table.select(pick_group, [groups_state], [group_view, keep, group_ids, index], **private)
    previous_btn.click(previous_group, [groups_state, index], [group_view, keep, group_ids, index], **private)
    next_btn.click(next_group, [groups_state, index], [group_view, keep, group_ids, index], **private)
    decide_inputs = [dataset, group_ids, keep, method, threshold, index, job_filter]
    for button, decision in ((keep_btn, "keep_one"), (merge_btn, "merge"), (apart_btn, "not_duplicates")):
        button.click(decide(decision), decide_inputs, [*view, *decisions_out], api_name=f"diversity_{decision}",
                     show_progress="minimal")
    undo_btn.click(diversity_undo, [dataset, undo_choice, method, threshold, job_filter], [*view, *decisions_out],
                   api_name="diversity_undo", show_progress="minimal")
    color_by.input(lambda report, color: plots.map_figure(report, color), [report_state, color_by], [map_plot],
                   **private)
    distributed_panel.build(ctx, dataset, fields=fields, threshold=threshold,
                            show_groups=(diversity_groups, [dataset, method, threshold, job_filter], view))
    # Groups and flags take a second or more at 100k records: read when the tab is first opened, not at sign-in.
    opened = gr.State(False)
    opened_outputs = [dataset, *view, *decisions_out, flags_plot, flags_table, *coverage_out, job_filter, opened]
    if ctx.tab is not None:
        ctx.tab.select(on_open, [dataset, method, threshold, opened, job_filter], opened_outputs,
                       api_visibility="private", show_progress_on=[summary]).then(
            stored_map, [dataset, color_by, report_state], coverage_out, **private)
    else:
        ctx.on_load(on_open, [dataset, method, threshold, opened, job_filter], opened_outputs,
                    then=(stored_map, [dataset, color_by, report_state], coverage_out))
