"""Publish and train: push a dataset to the Hub, start an SFT run, watch its log and loss, cancel, see history.

The token comes from HF_TOKEN or the password box for each action; it is passed through, never kept.
"""
from __future__ import annotations

import html
import os

import gradio as gr
import pandas as pd

from curation.publish import CONFIGS, PublishError
from curation.services import publishing
from curation.training.launchers import LaunchError
from curation.ui.context import AppContext
from db.models import Role

TAB_TITLE = "Publish & train"
TAB_ORDER = 70
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
JOBS_ROOT = os.environ.get("JOBS_DIR", "data/jobs")
FLAVORS = ["a10g-small", "a10g-large", "l4x1", "a100-large", "t4-small", "cpu-basic"]


def _token(typed: str | None) -> str | None:
    return (typed or "").strip() or os.environ.get("HF_TOKEN") or None


def _fail(error: Exception):
    raise gr.Error(html.escape(str(error)), duration=None, print_exception=False) from None


def loss_frame(metrics: list[dict]) -> pd.DataFrame:
    """Step and loss of every logged training step, for the loss curve."""
    points = [(int(m["step"]), float(m["loss"])) for m in metrics or [] if "loss" in m and "step" in m]
    # Explicit dtypes: an empty or object-typed frame would make the plot treat loss as categories.
    return pd.DataFrame(points, columns=["step", "loss"]).astype({"step": "int64", "loss": "float64"})


def job_summary(job) -> str:
    if job is None:
        return "No training job yet."
    model = f" · model `{job.model_repo}` @ `{(job.model_revision or '')[:12]}`" if job.model_repo else ""
    message = f"\n\n{html.escape(job.message)}" if job.message else ""
    return (f"**Job {job.id}** ({job.launcher}) — **{job.status.value}** · data `{job.dataset_repo}` @ "
            f"`{(job.dataset_revision or '')[:12]}`{model}{message}")


def history_frame(jobs, publications) -> pd.DataFrame:
    rows = [{"kind": "dataset", "id": p.id, "repo": p.repo_id, "revision": p.commit_id[:12], "status": "published",
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
            repo_id = gr.Textbox(label="Dataset repo id", placeholder="namespace/name", elem_id="publish-repo")
            private = gr.Checkbox(label="Private", value=True, elem_id="publish-private")
            token = gr.Textbox(label="Hugging Face token (used for this action only; HF_TOKEN if empty)",
                               type="password", elem_id="publish-token")
        with gr.Column(scale=2):
            base_model = gr.Textbox(label="Base model", value="Qwen/Qwen2.5-0.5B-Instruct", elem_id="publish-model")
            method = gr.Radio(["lora", "qlora", "full"], value="lora", label="Method", elem_id="publish-method")
            launcher = gr.Radio(["local", "hf-jobs"], value="local", label="Run on", elem_id="publish-launcher")
            flavor = gr.Dropdown(FLAVORS, value="a10g-small", label="Hardware (HF Jobs)", elem_id="publish-flavor")
            max_steps = gr.Number(label="Max steps (-1: one epoch)", value=-1, precision=0, elem_id="publish-steps")
            output_repo = gr.Textbox(label="Model repo id (empty: keep locally)", elem_id="publish-output")
    with gr.Row():
        go = gr.Button("Publish and train", variant="primary", elem_id="publish-go")
        publish_only = gr.Button("Publish only", elem_id="publish-only")
        cancel = gr.Button("Cancel job", variant="stop", elem_id="publish-cancel")
    progress = gr.Markdown("", elem_id="publish-progress")
    job_id = gr.Number(visible=False, precision=0, label="job id")
    status = gr.Markdown("No training job yet.", elem_id="publish-job-status")
    with gr.Row():
        log_tail = gr.Textbox(label="Log tail", lines=12, max_lines=12, interactive=False, elem_id="publish-log")
        loss = gr.LinePlot(loss_frame([]), x="step", y="loss", title="Training loss", elem_id="publish-loss")
    history = gr.Dataframe(history_frame([], []), label="History", interactive=False, elem_id="publish-history")
    timer = gr.Timer(2.0, active=True)

    def _publish(session, actor, name, chosen, formats, repo, is_private, typed, say):
        return publishing.publish_dataset(session, dataset=name, repo_id=(repo or "").strip(), token=_token(typed),
                                          private=bool(is_private), statuses=chosen or [], configs=formats or [],
                                          actor=actor, progress=say)

    @ctx.friendly
    def publish_dataset(name, chosen, formats, repo, is_private, typed, request: gr.Request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        with ctx.session() as session:
            try:
                publication = _publish(session, actor, name, chosen, formats, repo, is_private, typed, None)
            except PublishError as error:
                _fail(error)
            return f"Published `{publication.repo_id}` at revision `{publication.commit_id}` ({publication.split_counts})."

    @ctx.friendly
    def publish_and_train(name, chosen, formats, repo, is_private, typed, model, how, where, hardware, steps,
                          out_repo, request: gr.Request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        with ctx.session() as session:
            try:
                publication = _publish(session, actor, name, chosen, formats, repo, is_private, typed, None)
                job = publishing.start_training(
                    session, dataset=name, base_model=(model or "").strip(), launcher=where, token=_token(typed),
                    publication=publication, output_repo=(out_repo or "").strip(), flavor=hardware,
                    jobs_root=JOBS_ROOT, actor=actor,
                    spec_overrides={"method": how, "max_steps": int(steps) if steps is not None else None})
            except (PublishError, LaunchError, ValueError) as error:
                _fail(error)
            return (f"Published `{publication.repo_id}` at revision `{publication.commit_id}`; job {job.id} started.",
                    job.id, job_summary(job))

    def refresh(current, typed):
        with ctx.session() as session:
            job = None
            if current:
                job = publishing.refresh_job(session, int(current), token=_token(typed), jobs_root=JOBS_ROOT)
            table = history_frame(publishing.training_jobs(session), publishing.publications(session))
            if job is None:
                return "No training job yet.", "", loss_frame([]), table
            return job_summary(job), job.log_tail, loss_frame(job.metrics), table

    @ctx.friendly
    def cancel_job(current, typed, request: gr.Request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        if not current:
            raise gr.Error("No job to cancel.")
        with ctx.session() as session:
            job = publishing.cancel_training(session, int(current), token=_token(typed), jobs_root=JOBS_ROOT,
                                             actor=actor)
            return job_summary(job)

    publish_only.click(publish_dataset, [dataset, statuses, configs, repo_id, private, token], [progress],
                       api_name="publish_dataset")
    go.click(publish_and_train, [dataset, statuses, configs, repo_id, private, token, base_model, method, launcher,
                                 flavor, max_steps, output_repo], [progress, job_id, status],
             api_name="publish_and_train")
    cancel.click(cancel_job, [job_id, token], [status], api_name="publish_cancel")
    refresh_button = gr.Button("Refresh", size="sm", elem_id="publish-refresh")
    refresh_button.click(refresh, [job_id, token], [status, log_tail, loss, history], api_name="publish_refresh")
    timer.tick(refresh, [job_id, token], [status, log_tail, loss, history], api_visibility="private")
    ctx.on_load(lambda: gr.update(choices=ctx.datasets()), [], [dataset])
