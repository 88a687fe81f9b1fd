"""Generate: grow a dataset with a model (Self-Instruct, Evol-Instruct, SNI task expansion) as a job to follow.

Preview 5 first (nothing is written; the replies are cached, so the run gets them free), then launch, watch the
bar, cancel, resume (after a cancel, a failure or a restart), read what each rule dropped, and review the
records in Review. Public listeners: generate_preview, generate_launch, generate_cancel, generate_resume,
generate_refresh, generate_open_review.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import gradio as gr

from curation.generation.self_instruct import load_seed_tasks
from curation.llm.choices import model_choices
from curation.services import generation
from curation.services.errors import InvalidInput, NotFoundError, PermissionDenied
from curation.services.generation import EVOL_OPERATIONS, PIPELINES, JobSpec
from curation.services.permissions import Role
from curation.ui.context import AppContext
from curation.ui.generate_report import job_line, jobs_frame, preview_html, progress_html, report_html
from curation.ui.inputs import WholeNumber

TAB_TITLE = "Generate"
TAB_ORDER = 55
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
FOLLOWING = ("queued", "running")  # the states the timer keeps following


@dataclass
class Form:
    """The tab's fields as the handlers receive them, in the order of the public listeners' inputs."""

    pipeline: str | None
    dataset: str | None
    seed_file: str | None
    seed_dataset: str | None
    record_ids: str | None
    approved: bool | None
    operations: list[str] | None
    task_id: int | None
    model: str | None
    temperature: float | None
    max_tokens: int | None
    target: int | None
    budget: int | None
    seed: int | None


def record_ids(text: str | None) -> list[int]:
    """The ids of "3, 5, 8-20"; InvalidInput naming the part that is not an id or a range."""
    ids: list[int] = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip().lstrip("#")
        if not part:
            continue
        first, _, last = part.partition("-")
        if not first.strip().isdigit() or (last and not last.strip().isdigit()):
            raise InvalidInput(f"{part!r} is not a record id or a range like 8-20")
        ids += list(range(int(first), int(last) + 1)) if last else [int(first)]
    return ids


def job_spec(session, form: Form, datasets: list[str]) -> JobSpec:
    """The job the form asks for, with its seeds or parents read now (the job keeps its own copy)."""
    pipeline = form.pipeline or "self_instruct"
    spec = JobSpec(pipeline=pipeline, dataset=(form.dataset or "").strip(), model=form.model or None,
                   target=int(form.target if form.target is not None else 100), seed=int(form.seed or 0),
                   temperature=float(form.temperature if form.temperature is not None else 1.0),
                   max_tokens=int(form.max_tokens or 1024),
                   budget_requests=int(form.budget) if form.budget else None)  # the page shows empty as 0
    if form.budget is not None and int(form.budget) < 0:
        raise InvalidInput("the budget is a number of requests, or 0 for no limit")
    for name in (spec.dataset, form.seed_dataset if pipeline == "self_instruct" and not form.seed_file else None):
        if name and name not in datasets:
            raise InvalidInput(f"there is no dataset named {name!r}")
    if pipeline == "self_instruct":
        spec.seeds = _seeds(session, form.seed_file, form.seed_dataset)
    elif pipeline == "evol_instruct":
        spec.record_ids = record_ids(form.record_ids)
        if form.approved and spec.dataset:
            spec.record_ids += [i for i in generation.approved_record_ids(session, spec.dataset)
                                if i not in spec.record_ids]
            if not spec.record_ids:
                raise InvalidInput(f"dataset {spec.dataset} has no approved records to evolve")
        spec.operations = list(form.operations or [])
    elif pipeline == "expand_task":
        spec.task_id = int(form.task_id) if form.task_id else None
    return spec


def _seeds(session, seed_file: str | None, seed_dataset: str | None) -> list[dict]:
    """Seed tasks from the uploaded file, else from the records of the seed dataset; [] when neither is given."""
    if seed_file:
        try:
            tasks = load_seed_tasks(Path(seed_file))
        except (OSError, ValueError) as error:
            raise InvalidInput(f"the seed file cannot be read: {error}") from None
    elif seed_dataset:
        return generation.seeds_of_dataset(session, seed_dataset)
    else:
        return []
    return [asdict(task) for task in tasks]


def build(ctx: AppContext) -> None:
    try:
        models = [choice.label for choice in model_choices(ctx.settings)]
    except ValueError:  # a misread LLM_MODELS is the admin's to fix; the tab still opens (and says so on use)
        models = []
    with gr.Row():
        with gr.Column(scale=3):
            pipeline = gr.Radio([(label, key) for key, label in PIPELINES.items()], value="self_instruct",
                                label="Pipeline", elem_id="generate-pipeline")
            dataset = gr.Dropdown(label="Target dataset (the records go there, submitted for review)", choices=[],
                                  allow_custom_value=True, elem_id="generate-dataset")
            with gr.Group(visible=True) as seeds_box:
                seed_file = gr.File(label="Seed tasks file (Self-Instruct's seed_tasks.jsonl)", type="filepath",
                                    file_types=[".jsonl", ".json"], elem_id="generate-seed-file")
                seed_dataset = gr.Dropdown(label="…or the records of a dataset as seed tasks", choices=[],
                                           allow_custom_value=True, elem_id="generate-seed-dataset")
            with gr.Group(visible=False) as evol_box:
                ids = gr.Textbox(label="Records to evolve (ids, e.g. 3, 5, 8-20)", elem_id="generate-records")
                approved = gr.Checkbox(label="…and every approved record of the target dataset",
                                       elem_id="generate-approved")
                operations = gr.CheckboxGroup(list(EVOL_OPERATIONS), value=list(EVOL_OPERATIONS),
                                              label="Operations", elem_id="generate-operations")
            with gr.Group(visible=False) as task_box:
                task_id = WholeNumber(label="Task to expand (its id)", precision=0, elem_id="generate-task")
        with gr.Column(scale=2):
            model = gr.Dropdown(models, value=models[0] if models else None, label="Model", elem_id="generate-model")
            temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Temperature",
                                    elem_id="generate-temperature")
            max_tokens = WholeNumber(label="Max tokens per reply", value=1024, precision=0,
                                     elem_id="generate-max-tokens")
            target = WholeNumber(label="Records to keep (target)", value=100, precision=0, elem_id="generate-target")
            budget = WholeNumber(label="Budget: at most this many requests (0: no limit)", value=0, precision=0,
                                 elem_id="generate-budget")
            seed = WholeNumber(label="Random seed (a resume replays the same requests)", value=0, precision=0,
                               elem_id="generate-seed")
    with gr.Row():
        preview_btn = gr.Button("Preview 5", elem_id="generate-preview")
        launch_btn = gr.Button("Launch", variant="primary", elem_id="generate-launch")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="generate-cancel")
        resume_btn = gr.Button("Resume", elem_id="generate-resume")
        review_btn = gr.Button("Open in Review", elem_id="generate-open-review")
        refresh_btn = gr.Button("Refresh", elem_id="generate-refresh")
    job_id = WholeNumber(visible=False, precision=0, label="job id")
    status = gr.Markdown("No generation job yet.", elem_id="generate-status")
    progress = gr.HTML(progress_html(0, 0), elem_id="generate-progress")
    preview = gr.HTML("", elem_id="generate-preview-box")
    report = gr.HTML("", elem_id="generate-report")
    jobs = gr.Dataframe(jobs_frame([]), label="Jobs (click one to follow it)", interactive=False, wrap=True,
                        elem_id="generate-jobs")
    timer = gr.Timer(1.0, active=False)  # follows a queued or running job; started by launch, resume, a pick

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def job_view(actor, current) -> tuple:
        """(job id, line, bar, report, jobs table, timer) of job `current` (None: nothing chosen)."""
        with ctx.session() as session:
            if not current:
                table = jobs_frame(generation.list_jobs(session, actor))
                return None, job_line(None), progress_html(0, 0), "", table, gr.Timer(active=False)
            try:
                job = generation.get_job(session, int(current))
            except NotFoundError as gone:  # said once, and the timer stops (no toast every second)
                table = jobs_frame(generation.list_jobs(session, actor))
                return None, f"Not found: {gone}.", progress_html(0, 0), "", table, gr.Timer(active=False)
            state = generation.job_state(job)
            # the table is read after the job, so it is never older than the line above it (a job finishing
            # between the two reads showed "completed" over a row still "running")
            table = jobs_frame(generation.list_jobs(session, actor))
            return (job.id, job_line(job), progress_html(job.kept, job.target, state), report_html(job), table,
                    gr.Timer(active=state in FOLLOWING))

    def form_spec(session, values) -> JobSpec:
        return job_spec(session, Form(*values), ctx.datasets())

    @ctx.friendly
    def generate_preview(pipeline_v, dataset_v, seed_file_v, seed_dataset_v, ids_v, approved_v, operations_v,
                         task_v, model_v, temperature_v, max_tokens_v, target_v, budget_v, seed_v,
                         request: gr.Request):
        """The first 5 records the job would keep, and what it dropped on the way; nothing is written."""
        actor = curator(request)
        with ctx.session() as session:
            spec = form_spec(session, (pipeline_v, dataset_v, seed_file_v, seed_dataset_v, ids_v, approved_v,
                                       operations_v, task_v, model_v, temperature_v, max_tokens_v, target_v,
                                       budget_v, seed_v))
            candidates, found = generation.preview(session, actor, ctx.settings, spec, count=5)
        return preview_html(candidates, found)

    @ctx.friendly
    def generate_launch(pipeline_v, dataset_v, seed_file_v, seed_dataset_v, ids_v, approved_v, operations_v,
                        task_v, model_v, temperature_v, max_tokens_v, target_v, budget_v, seed_v,
                        request: gr.Request):
        """Create the job and start it in the app; the bar follows it."""
        actor = curator(request)
        with ctx.session() as session:
            spec = form_spec(session, (pipeline_v, dataset_v, seed_file_v, seed_dataset_v, ids_v, approved_v,
                                       operations_v, task_v, model_v, temperature_v, max_tokens_v, target_v,
                                       budget_v, seed_v))
            created = generation.create_job(session, actor, spec, ctx.settings).id
        generation.start_in_background(ctx.engine, ctx.settings, created)
        return job_view(actor, created)

    @ctx.friendly
    def generate_cancel(current, request: gr.Request):
        """Ask the job to stop after the requests in flight; what it kept stays, and Resume asks for the rest."""
        actor = curator(request)
        if not current:
            raise InvalidInput("choose a job to cancel first")
        with ctx.session() as session:
            generation.request_cancel(session, actor, int(current))
        return job_view(actor, current)

    @ctx.friendly
    def generate_resume(current, request: gr.Request):
        """Run a cancelled, failed or interrupted job again; the replies it already had come from the cache."""
        actor = curator(request)
        if not current:
            raise InvalidInput("choose a job to resume first")
        with ctx.session() as session:
            generation.prepare_resume(session, actor, int(current))
        generation.start_in_background(ctx.engine, ctx.settings, int(current))
        return job_view(actor, current)

    @ctx.friendly
    def generate_refresh(current, request: gr.Request):
        """Where the job stands (its bar and, once it stopped, its report) and the jobs table."""
        return job_view(curator(request), current)

    @ctx.friendly
    def generate_open_review(current, request: gr.Request):
        """Switch to Review, where the job's records wait as submitted items of its dataset."""
        actor = curator(request)
        if current:
            with ctx.session() as session:
                job = generation.get_job(session, int(current))
                gr.Info(f"Job {job.id}'s records wait in the queue of dataset {job.spec.get('dataset')}: "
                        "choose it in Review's Dataset box to see only them and the others submitted there.")
        return gr.Tabs(selected="review_tab")

    @ctx.friendly
    def pick_job(event: gr.SelectData, request: gr.Request):
        actor = curator(request)
        row = (event.row_value if event is not None else None) or []
        return job_view(actor, int(row[0])) if row and str(row[0]).isdigit() else tuple(gr.skip() for _ in view)

    @ctx.friendly
    def open_tab(request: gr.Request):
        """For curators and admins: the dataset names, the jobs, and the newest job followed if it runs."""
        actor = ctx.actor(request)
        try:
            ctx.require(actor, Role.curator)
        except PermissionDenied:  # the tab is hidden from annotators: no error on their every page load
            return tuple(gr.skip() for _ in (dataset, seed_dataset, *view))
        names = ctx.datasets()
        with ctx.session() as session:
            newest = next(iter(generation.list_jobs(session, actor, limit=1)), None)
        return (gr.update(choices=names), gr.update(choices=names), *job_view(actor, newest.id if newest else None))

    form = [pipeline, dataset, seed_file, seed_dataset, ids, approved, operations, task_id, model, temperature,
            max_tokens, target, budget, seed]
    view = [job_id, status, progress, report, jobs, timer]
    private = dict(api_visibility="private", show_progress="hidden")
    preview_btn.click(generate_preview, form, [preview], api_name="generate_preview", show_progress_on=[preview],
                      concurrency_limit=1, concurrency_id="generate-preview")
    launch_btn.click(generate_launch, form, view, api_name="generate_launch")
    cancel_btn.click(generate_cancel, [job_id], view, api_name="generate_cancel")
    resume_btn.click(generate_resume, [job_id], view, api_name="generate_resume")
    refresh_btn.click(generate_refresh, [job_id], view, api_name="generate_refresh")
    review_btn.click(generate_open_review, [job_id], [ctx.tabs] if ctx.tabs is not None else [],
                     api_name="generate_open_review")
    timer.tick(generate_refresh, [job_id], view, **private)
    jobs.select(pick_job, None, view, **private)
    pipeline.change(lambda chosen: [gr.update(visible=chosen == key) for key in PIPELINES], [pipeline],
                    [seeds_box, evol_box, task_box], **private)
    ctx.on_load(open_tab, None, [dataset, seed_dataset, *view])
