"""Publish and train: push a dataset to the Hub, start an SFT run, watch its log and loss, cancel, see history.

The token comes from HF_TOKEN or the password box for each action; it is passed through, never kept.
"""
from __future__ import annotations

import html
import os

import gradio as gr
import pandas as pd

from curation.publish import CONFIGS
from curation.services import publishing
from curation.services.permissions import PermissionDenied
from curation.training.launchers import LaunchError
from curation.ui.inputs import WholeNumber, hub_token
from curation.ui.context import AppContext
from curation.services.errors import NotFoundError
from curation.services.permissions import Role

TAB_TITLE = "Publish & train"
TAB_ORDER = 70
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
JOBS_ROOT = os.environ.get("JOBS_DIR", "data/jobs")
NO_DATASET = "Choose a dataset to see how many of its records would go out."
EVERYTHING = "Everything published"  # never a selection's name: those have no spaces
FLAVORS = ["a10g-small", "a10g-large", "l4x1", "a100-large", "t4-small", "cpu-basic"]
FOLLOWING = ("queued", "running")  # a job's states the timer keeps following



def loss_frame(metrics: list[dict]) -> pd.DataFrame:
    """Step and loss of every logged training step, for the loss curve."""
    points = [(int(m["step"]), float(m["loss"])) for m in metrics or [] if "loss" in m and "step" in m]
    # Explicit dtypes: an empty or object-typed frame would make the plot treat loss as categories.
    return pd.DataFrame(points, columns=["step", "loss"]).astype({"step": "int64", "loss": "float64"})


def counts_text(counts: dict) -> str:
    """The line under the choices: how many records would go out, by status and by split, in which formats."""
    if not counts["by_status"]:
        return "Choose the statuses to publish."
    by_status = ", ".join(f"{status} {n:,}" for status, n in counts["by_status"].items())
    if not counts["total"]:
        return f"No records would go out ({by_status})."
    splits, formats = counts["splits"], counts["configs"]
    shown = (f"in {len(formats)} format{'s' if len(formats) > 1 else ''} ({', '.join(formats)})" if formats
             else "choose at least one format")
    return (f"**{counts['total']:,}** records would go out ({by_status}): train **{splits['train']:,}**, "
            f"test **{splits['test']:,}**; {shown}.")


def job_summary(job) -> str:
    if job is None:
        return "No training job yet."
    model = f" · model `{job.model_repo}` @ `{(job.model_revision or '')[:12]}`" if job.model_repo else ""
    message = f"\n\n{html.escape(job.message)}" if job.message else ""
    return (f"**Job {job.id}** ({job.launcher}) — **{job.status.value}** · data `{job.dataset_repo}` @ "
            f"`{(job.dataset_revision or '')[:12]}`{model}{message}")


def train_on_choices(selections: list[str]) -> list[str]:
    """The "Train on" choices: everything published, then each published selection of the dataset."""
    return [EVERYTHING, *selections]


def chosen_selection(train_on: str | None) -> str | None:
    """The selection to train on, or None for everything published."""
    return None if not train_on or train_on == EVERYTHING else train_on


def history_frame(jobs, publications) -> pd.DataFrame:
    rows = [{"kind": f"selection {name}" if (name := publishing.selection_published(p)) else "dataset", "id": p.id,
             "repo": p.repo_id, "revision": p.commit_id[:12], "status": "published",
             "when": p.created_at.strftime("%Y-%m-%d %H:%M")} for p in publications]
    rows += [{"kind": "training", "id": j.id, "repo": j.model_repo or "(not pushed)",
              "revision": (j.model_revision or "")[:12], "status": j.status.value,
              "when": j.created_at.strftime("%Y-%m-%d %H:%M")} for j in jobs]
    return pd.DataFrame(rows, columns=["kind", "id", "repo", "revision", "status", "when"])


def build(ctx: AppContext) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, elem_id="publish-dataset")
            statuses = gr.CheckboxGroup(["approved", "submitted", "draft", "rejected"], value=["approved"],
                                        label="Statuses to publish", elem_id="publish-statuses")
            configs = gr.CheckboxGroup(list(CONFIGS), value=["messages"], label="Formats (Hub configs)",
                                       elem_id="publish-configs")
            counts = gr.Markdown(NO_DATASET, elem_id="publish-counts")
            repo_id = gr.Textbox(label="Dataset repo id", placeholder="namespace/name", elem_id="publish-repo")
            private = gr.Checkbox(label="Private", value=True, elem_id="publish-private")
            token = gr.Textbox(label="Hugging Face token (used for this action only; HF_TOKEN if empty)",
                               type="password", elem_id="publish-token")
        with gr.Column(scale=2):
            base_model = gr.Textbox(label="Base model", value="Qwen/Qwen2.5-0.5B-Instruct", elem_id="publish-model")
            method = gr.Radio(["lora", "qlora", "full"], value="lora", label="Method", elem_id="publish-method")
            launcher = gr.Radio(["local", "hf-jobs"], value="local", label="Run on", elem_id="publish-launcher")
            flavor = gr.Dropdown(FLAVORS, value="a10g-small", label="Hardware (HF Jobs)", elem_id="publish-flavor")
            # Custom values pass: a script names a published selection without first asking for the choices.
            train_on = gr.Dropdown(train_on_choices([]), value=EVERYTHING, label="Train on", allow_custom_value=True,
                                   info="everything published, or a selection published from the Quality tab",
                                   elem_id="publish-train-on")
            max_steps = WholeNumber(label="Max steps (-1: one epoch)", value=-1, precision=0, elem_id="publish-steps")
            output_repo = gr.Textbox(label="Model repo id (empty: keep locally)", elem_id="publish-output")
    with gr.Row():
        go = gr.Button("Publish and train", variant="primary", elem_id="publish-go")
        publish_only = gr.Button("Publish only", elem_id="publish-only")
        cancel = gr.Button("Cancel job", variant="stop", elem_id="publish-cancel")
    progress = gr.Markdown("", elem_id="publish-progress")
    job_id = WholeNumber(visible=False, precision=0, label="job id")
    status = gr.Markdown("No training job yet.", elem_id="publish-job-status")
    with gr.Row():
        log_tail = gr.Textbox(label="Log tail", lines=12, max_lines=12, interactive=False, elem_id="publish-log")
        loss = gr.LinePlot(loss_frame([]), x="step", y="loss", title="Training loss", elem_id="publish-loss")
    history = gr.Dataframe(history_frame([], []), label="History", interactive=False, elem_id="publish-history")
    timer = gr.Timer(2.0, active=False)  # started when the tab opens (for curators and admins) and by a launch

    def _publish(session, actor, name, chosen, formats, repo, is_private, typed, say):
        return publishing.publish_dataset(session, dataset=name, repo_id=(repo or "").strip(), token=hub_token(typed),
                                          private=bool(is_private), statuses=chosen or [], configs=formats or [],
                                          actor=actor, progress=say)

    def _counts(actor, name, chosen, formats):
        if not name:
            return NO_DATASET
        with ctx.session() as session:
            return counts_text(publishing.publication_counts(session, dataset=name, statuses=chosen or [],
                                                             configs=formats or [], actor=actor))

    @ctx.friendly
    def publish_counts(name, chosen, formats, request: gr.Request):
        """How many records publishing would send, by status and train/test split, before anything is sent."""
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return _counts(actor, name, chosen, formats)

    @ctx.friendly
    def train_choices(name, current, request: gr.Request):
        """The "Train on" choices of the dataset: everything published, then each of its published selections."""
        ctx.require(ctx.actor(request), Role.curator)
        if not name:
            return gr.update(choices=train_on_choices([]), value=EVERYTHING)
        with ctx.session() as session:
            names = publishing.published_selections(session, dataset=name)
        return gr.update(choices=train_on_choices(names), value=current if current in names else EVERYTHING)

    @ctx.friendly
    def open_tab(name, chosen, formats, request: gr.Request):
        """For curators and admins: the datasets, the counts, and the timer that follows a job; nothing else."""
        actor = ctx.actor(request)
        try:
            ctx.require(actor, Role.curator)
        except PermissionDenied:  # the tab is hidden from annotators: no error on their every page load
            return gr.skip(), gr.skip(), gr.skip()
        return gr.update(choices=ctx.datasets()), _counts(actor, name, chosen, formats), gr.Timer(active=True)

    @ctx.friendly
    def publish_dataset(name, chosen, formats, repo, is_private, typed, request: gr.Request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        with ctx.session() as session:
            publication = _publish(session, actor, name, chosen, formats, repo, is_private, typed, None)
            return f"Published `{publication.repo_id}` at revision `{publication.commit_id}` ({publication.split_counts})."

    @ctx.friendly
    def publish_and_train(name, chosen, formats, repo, is_private, typed, model, how, where, hardware, steps,
                          out_repo, train_on=EVERYTHING, request: gr.Request = None):
        """Publish the dataset, then train on it, or on the latest publication of the chosen selection."""
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        selection = chosen_selection(train_on)
        with ctx.session() as session:
            if selection:  # a selection never published is said before anything is pushed
                publishing.training_publication(session, dataset=name, selection=selection)
            publication = _publish(session, actor, name, chosen, formats, repo, is_private, typed, None)
            try:
                job = publishing.start_training(
                    session, dataset=name, base_model=(model or "").strip(), launcher=where, token=hub_token(typed),
                    publication=None if selection else publication, selection=selection,
                    output_repo=(out_repo or "").strip(), flavor=hardware, jobs_root=JOBS_ROOT, actor=actor,
                    spec_overrides={"method": how, "max_steps": int(steps) if steps is not None else None})
            except ValueError as error:  # a spec value the user chose (method, precision) is refused
                raise LaunchError(str(error)) from None
            on = (f" on selection `{selection}` (published at `{job.dataset_revision}`)" if selection else "")
            return (f"Published `{publication.repo_id}` at revision `{publication.commit_id}`; job {job.id} "
                    f"started{on}.", job.id, job_summary(job))

    def shown_job(current, typed, request: gr.Request) -> tuple[str | None, tuple]:
        """The followed job's status (None without one) and what the tab shows of it and of the history."""
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        with ctx.session() as session:
            job = None
            if current:
                job = publishing.refresh_job(session, int(current), token=hub_token(typed), jobs_root=JOBS_ROOT)
            table = history_frame(publishing.training_jobs(session), publishing.publications(session))
            if job is None:
                return None, ("No training job yet.", "", loss_frame([]), table)
            return job.status.value, (job_summary(job), job.log_tail, loss_frame(job.metrics), table)

    @ctx.friendly
    def refresh(current, typed, request: gr.Request):
        return shown_job(current, typed, request)[1]

    @ctx.friendly
    def cancel_job(current, typed, request: gr.Request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        if not current:
            raise gr.Error("No job to cancel.")
        with ctx.session() as session:
            job = publishing.cancel_training(session, int(current), token=hub_token(typed), jobs_root=JOBS_ROOT,
                                             actor=actor)
            return job_summary(job)

    publish_only.click(publish_dataset, [dataset, statuses, configs, repo_id, private, token], [progress],
                       api_name="publish_dataset")
    go.click(publish_and_train, [dataset, statuses, configs, repo_id, private, token, base_model, method, launcher,
                                 flavor, max_steps, output_repo, train_on], [progress, job_id, status],
             api_name="publish_and_train").success(
        lambda: gr.Timer(active=True), None, [timer], api_visibility="private", show_progress="hidden")
    cancel.click(cancel_job, [job_id, token], [status], api_name="publish_cancel")
    refresh_button = gr.Button("Refresh", size="sm", elem_id="publish-refresh")
    refresh_button.click(refresh, [job_id, token], [status, log_tail, loss, history], api_name="publish_refresh")
    @ctx.friendly
    def follow(current, typed, request: gr.Request):
        """The timer's refresh while a job is queued or running; it stops once the job has ended or when there is
        none (a page left open must not redraw the tab every 2 s), and a job that is gone is said once."""
        try:
            status, shown = shown_job(current, typed, request)
        except NotFoundError as gone:
            return f"Not found: {gone}.", "", loss_frame([]), gr.skip(), gr.Timer(active=False)
        return (*shown, gr.Timer(active=status in FOLLOWING))

    timer.tick(follow, [job_id, token], [status, log_tail, loss, history, timer], api_visibility="private",
               show_progress="hidden")
    gr.on([dataset.change, statuses.change, configs.change], publish_counts, [dataset, statuses, configs], [counts],
          api_name="publish_counts", show_progress="hidden")
    # A selection published from the Quality tab shows up when the dataset is chosen again, or on Refresh.
    dataset.change(train_choices, [dataset, train_on], [train_on], api_name="publish_train_choices",
                   show_progress="hidden")
    refresh_button.click(train_choices, [dataset, train_on], [train_on], api_visibility="private",
                         show_progress="hidden")
    ctx.on_load(open_tab, [dataset, statuses, configs], [dataset, counts, timer])
