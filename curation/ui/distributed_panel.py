"""Search on a cluster: the Diversity tab's panel that hands the near-duplicate search to datatrove and follows it.

Public listeners: diversity_distributed_search_start, diversity_distributed_search_status (the "diversity_"
prefix: every named endpoint carries its tab's, tests/test_ui_api.py). When a search completes its pairs are the
dataset's latest search, so the tab's duplicate groups view shows them as after any other search.
"""
from __future__ import annotations

import functools
import html

import gradio as gr

from curation.services import distributed_search as service
from curation.services.dedup import DedupError
from curation.services.permissions import Role
from curation.ui.context import AppContext
from curation.ui.publish_tab import JOBS_ROOT

# Hugging Face Jobs is not offered yet: its tasks would need the shards on the Hub (the service says so)
ENGINES = [("This machine (datatrove local)", "local"), ("Slurm", "slurm")]
FIELDS = {"Instruction": "instruction", "Instruction + input": "instruction+input", "Whole record": "record"}
FOLLOWING = ("queued", "running")


def _refused(fn):
    """A search the service refuses (DistributedSearchError is a DedupError) is said as its own message."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DedupError as exc:
            message = str(exc)
            raise gr.Error(html.escape(message[:1].upper() + message[1:] + ".", quote=False),
                           print_exception=False) from None

    return wrapper


def build(ctx: AppContext, dataset: gr.Dropdown, *, fields=None, threshold=None, show_groups=None) -> dict:
    """The accordion; `fields` and `threshold` are the tab's own controls, `show_groups` = (fn, inputs, outputs)
    redraws the tab's groups when a search completes. Returns the components by name."""
    with gr.Accordion("Search on a cluster (datatrove)", open=False, elem_id="distributed-search"):
        with gr.Row(equal_height=True):
            tasks = gr.Number(value=2, precision=0, minimum=1, maximum=1024, label="Tasks", scale=1,
                              elem_id="distributed-tasks")
            executor = gr.Dropdown(ENGINES, value="local", label="Engine", scale=2, elem_id="distributed-executor")
            partition = gr.Textbox(label="Slurm partition", placeholder="only for Slurm", scale=2,
                                   elem_id="distributed-partition")
            start = gr.Button("Start on the cluster", variant="primary", scale=1, elem_id="distributed-start")
        status = gr.Markdown("No search on a cluster yet.", elem_id="distributed-status")
        gr.Markdown("The texts go to the engine as Parquet shards; each task embeds its own shard. When the search "
                    "completes, its groups appear under **Duplicate groups** as usual (it is the dataset's latest "
                    "search), with the same decisions.", elem_classes=["hint"])
        search_id = gr.Textbox(visible=False, label="distributed search id")
        completed = gr.Textbox(visible=False, label="completed distributed search")
    timer = gr.Timer(2.0, active=False)  # follows a running search; started by Start

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def said(state: service.SearchStatus) -> tuple:
        """(status line, timer, the id once completed) of a search's status."""
        line = html.escape(state.sentence, quote=False)
        return (line, gr.Timer(active=state.status in FOLLOWING),
                str(state.id) if state.status == "completed" else gr.skip())

    @ctx.friendly
    @_refused
    def distributed_search_start(dataset_v, fields_v, threshold_v, tasks_v, executor_v, partition_v="",
                                 request: gr.Request = None):
        """Export the dataset's texts as shards and start the engine's search; returns its id and status line."""
        actor = curator(request)
        if not dataset_v:
            raise service.DistributedSearchError("choose a dataset first")
        with ctx.session() as session:
            search = service.start_distributed_search(
                session, actor, dataset=dataset_v, threshold=float(threshold_v) if threshold_v else None,
                fields=FIELDS.get(fields_v, fields_v) or None, tasks=int(tasks_v or 2), executor=executor_v or "local",
                partition=(partition_v or "").strip() or None, work_root=JOBS_ROOT, model=ctx.settings.embed_model)
            state = service.search_status(session, search.id)
        return (str(search.id), *said(state))

    @ctx.friendly
    @_refused
    def distributed_search_status(search_id_v, request: gr.Request = None):
        """Where the search stands: its stage and tasks done; once completed, its pairs are read back."""
        curator(request)
        if not str(search_id_v or "").isdigit():
            return "No search on a cluster yet.", gr.Timer(active=False), gr.skip()
        with ctx.session() as session:
            return said(service.search_status(session, int(search_id_v)))

    start.click(distributed_search_start, [dataset, fields or gr.State(None), threshold or gr.State(None), tasks,
                                           executor, partition], [search_id, status, timer, completed],
                api_name="diversity_distributed_search_start", show_progress="minimal")
    search_id.change(distributed_search_status, [search_id], [status, timer, completed],
                     api_name="diversity_distributed_search_status", show_progress="hidden")
    timer.tick(distributed_search_status, [search_id], [status, timer, completed], api_visibility="private",
               show_progress="hidden")
    if show_groups is not None:
        completed.change(*show_groups, api_visibility="private", show_progress="hidden")
    return {"tasks": tasks, "executor": executor, "start": start, "status": status, "search_id": search_id,
            "timer": timer}
