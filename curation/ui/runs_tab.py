"""Runs: every training run with what it was trained on and how its model scored; evaluate a run (followed live),
compare two side by side (per-metric deltas, the prompts where their answers differ most, the nearest training
records of each), and see a score against the data trained on across runs.

Public listeners (scriptable with gradio_client): runs_list, runs_evaluate, runs_follow, runs_cancel, runs_compare,
runs_curve.
"""
from __future__ import annotations


import gradio as gr

from curation.llm.choices import model_choices
from curation.services import evaluation as evaluations
from curation.services.errors import InvalidInput
from curation.services.permissions import Role
from curation.services.runs_view import nearest_training_records
from curation.ui import runs_views as views
from curation.ui.context import AppContext
from curation.ui.inputs import hub_token
from curation.ui.publish_tab import FLAVORS, JOBS_ROOT
from curation.ui.near_duplicate_hint import open_record_on_click, shared_embedder

TAB_TITLE = "Runs"
TAB_ORDER = 92  # after Publish & train, which starts the runs
TAB_ROLES = ("curator",)
NO_JUDGE = ("No judge (ROUGE-L, exact match and loss only)", "")



def _run_id(value) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def build(ctx: AppContext) -> None:
    with gr.Row(equal_height=True):
        dataset = gr.Dropdown(label="Runs of", choices=[("Every dataset", "")], value="", allow_custom_value=True,
                              scale=2, elem_id="runs-dataset")
        refresh_btn = gr.Button("Refresh", size="sm", scale=1, elem_id="runs-refresh")
    runs_table = gr.Dataframe(interactive=False, wrap=True, show_label=False, max_height=420, elem_id="runs-table",
                              column_widths=["44px", "90px", "96px", "260px", "150px", "64px", "72px", "80px",
                                             "64px", "90px", "80px", "80px", "96px", "96px"])
    with gr.Accordion("Evaluate a run", open=True, elem_id="runs-evaluate-box"):
        with gr.Row(equal_height=True):
            run = gr.Dropdown(label="Run", choices=[], allow_custom_value=True, scale=3, elem_id="runs-run")
            labels = [c.label for c in model_choices(ctx.settings)]
            judge = gr.Dropdown(label="Judge (pairwise, both orders)", choices=[NO_JUDGE, *[(l, l) for l in labels]],
                                value=labels[0] if labels else "", scale=2, elem_id="runs-judge")
            harness = gr.Textbox(label="Harness tasks (comma-separated; local = the test split as a task)",
                                 value="local", scale=2, elem_id="runs-harness")
            limit = gr.Number(label="Test prompts (0: all)", precision=0, value=0, minimum=0, scale=1,
                              elem_id="runs-limit")
        with gr.Row(equal_height=True):
            where = gr.Radio([("This machine", "local"), ("Hugging Face Jobs", "hf-jobs")], value="local",
                             label="Run it on", scale=2, elem_id="runs-launcher")
            flavor = gr.Dropdown(FLAVORS, value=FLAVORS[0], label="Jobs hardware", scale=1, elem_id="runs-flavor")
            token = gr.Textbox(label="Hugging Face token (this action only; HF_TOKEN if empty)", type="password",
                               scale=3, elem_id="runs-token")
            evaluate_btn = gr.Button("Evaluate", variant="primary", scale=1, elem_id="runs-evaluate")
            cancel_btn = gr.Button("Cancel", variant="stop", scale=1, elem_id="runs-cancel")
        status = gr.Markdown("No evaluation yet.", elem_id="runs-status")
        bar = gr.Slider(0, 1, value=0, label="Progress", interactive=False, elem_id="runs-progress")
        log_tail = gr.Textbox(label="End of the evaluation's log", lines=6, max_lines=12, interactive=False,
                              elem_id="runs-log")
        evaluation_id = gr.State(None)
    with gr.Accordion("Compare two runs", open=True, elem_id="runs-compare-box"):
        with gr.Row(equal_height=True):
            run_a = gr.Dropdown(label="Run A", choices=[], allow_custom_value=True, scale=3, elem_id="runs-a")
            run_b = gr.Dropdown(label="Run B", choices=[], allow_custom_value=True, scale=3, elem_id="runs-b")
            compare_btn = gr.Button("Compare", variant="primary", scale=1, elem_id="runs-compare")
        deltas = gr.Dataframe(interactive=False, show_label=False, elem_id="runs-deltas")
        side_by_side = gr.HTML(elem_id="runs-side-by-side", elem_classes=["dv-root", "rv-root"],
                               head=f"<style>{views.RUNS_CSS}</style>")
    with gr.Accordion("Score against the data trained on", open=False, elem_id="runs-curve-box"):
        with gr.Row():
            metric = gr.Dropdown(label="Score", choices=[(views.metric_label("loss"), "loss")], value="loss",
                                 allow_custom_value=True, elem_id="runs-metric")
            axis = gr.Radio(list(views.CURVE_X), value="Training records", label="Against", elem_id="runs-axis")
        curve = gr.Plot(show_label=False, elem_id="runs-curve")
    timer = gr.Timer(2.0, active=False)
    open_record_on_click(ctx, ".rv-root")

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def listed(dataset_v):
        with ctx.session() as session:
            return evaluations.runs(session, dataset=dataset_v or None)

    @ctx.friendly
    def runs_list(dataset_v, metric_v, axis_v, request: gr.Request = None):
        """Every training run (of the dataset, if one is chosen) with what it trained on and its scores."""
        curator(request)
        rows = listed(dataset_v)
        choices = views.run_choices(rows)
        first = choices[0][1] if choices else None
        second = choices[1][1] if len(choices) > 1 else None
        metrics = views.curve_metrics(rows)
        chosen_metric = metric_v if any(value == metric_v for _, value in metrics) else metrics[0][1]
        return (views.runs_frame(rows), gr.update(choices=choices, value=first),
                gr.update(choices=choices, value=second), gr.update(choices=choices, value=first),
                gr.update(choices=metrics, value=chosen_metric), views.curve_figure(rows, chosen_metric, axis_v))

    @ctx.friendly
    def runs_curve(dataset_v, metric_v, axis_v, request: gr.Request = None):
        curator(request)
        return views.curve_figure(listed(dataset_v), metric_v, axis_v)

    def shown(evaluation):
        return (views.evaluation_line(evaluation), views.progress_share(evaluation),
                (evaluation.log_tail or "") if evaluation is not None else "")

    @ctx.friendly
    def runs_evaluate(run_v, judge_v, harness_v, limit_v, token_v, where_v="local", flavor_v=None,
                      request: gr.Request = None):
        """Start evaluating the run's model on its test split (and its base model beside it)."""
        actor = curator(request)
        job_id = _run_id(run_v)
        if job_id is None:
            raise InvalidInput("choose a run to evaluate")
        tasks = [t.strip() for t in (harness_v or "").split(",") if t.strip()]
        with ctx.session() as session:
            evaluation = evaluations.start_evaluation(
                session, training_job_id=job_id, judge_label=judge_v or None, settings=ctx.settings,
                harness_tasks=tasks, token=hub_token(token_v), jobs_root=JOBS_ROOT, actor=actor,
                limit=int(limit_v) if limit_v else None, launcher=where_v or "local",
                flavor=flavor_v or FLAVORS[0])
            return (*shown(evaluation), evaluation.id, gr.Timer(active=True))

    @ctx.friendly
    def runs_follow(current, token_v, dataset_v=None, request: gr.Request = None):
        """How the evaluation goes; when it has ended the timer stops and the runs table shows its scores."""
        curator(request)
        if current is None:
            return (*shown(None), gr.Timer(active=False), gr.skip())
        with ctx.session() as session:
            evaluation = evaluations.refresh_evaluation(session, int(current), jobs_root=JOBS_ROOT,
                                                        token=hub_token(token_v))
            running = evaluation.status.value in ("queued", "running")
        table = gr.skip() if running else views.runs_frame(listed(dataset_v))
        return (*shown(evaluation), gr.Timer(active=running), table)

    @ctx.friendly
    def runs_cancel(current, token_v=None, request: gr.Request = None):
        actor = curator(request)
        if current is None:
            raise InvalidInput("no evaluation is running")
        with ctx.session() as session:
            evaluation = evaluations.cancel_evaluation(session, int(current), jobs_root=JOBS_ROOT, actor=actor,
                                                       token=hub_token(token_v))
            return (*shown(evaluation), gr.Timer(active=False))

    @ctx.friendly
    def runs_compare(a_v, b_v, request: gr.Request = None):
        """Per-metric deltas of two runs and, side by side, the test prompts where their answers differ most."""
        curator(request)
        a, b = _run_id(a_v), _run_id(b_v)
        if a is None or b is None or a == b:
            raise InvalidInput("choose two different runs to compare")
        with ctx.session() as session:
            comparison = evaluations.compare_runs(session, a, b)
            nearest = None
            dataset_v = comparison.b.dataset or comparison.a.dataset
            if comparison.differing and dataset_v:
                nearest = nearest_training_records(session, dataset=dataset_v,
                                                   prompts=[p.prompt for p in comparison.differing],
                                                   embedder=shared_embedder(ctx))
        return views.deltas_frame(comparison), views.side_by_side_html(comparison, nearest)

    @ctx.friendly
    def on_open(dataset_v, metric_v, axis_v, request: gr.Request = None):
        actor = ctx.actor(request)
        if not actor.reviews:  # the tab is hidden from annotators: nothing to read for them
            return tuple(gr.skip() for _ in open_outputs)
        names = ctx.datasets()
        return (gr.update(choices=[("Every dataset", ""), *[(n, n) for n in names]]),
                *runs_list(dataset_v, metric_v, axis_v, request))

    list_outputs = [runs_table, run, run_b, run_a, metric, curve]
    followed = [status, bar, log_tail]
    # Public listeners first: a later private one of the same function would not take its api_name.
    refresh_btn.click(runs_list, [dataset, metric, axis], list_outputs, api_name="runs_list", show_progress="minimal")
    dataset.input(runs_list, [dataset, metric, axis], list_outputs, api_visibility="private",
                  show_progress="minimal")
    evaluate_btn.click(runs_evaluate, [run, judge, harness, limit, token, where, flavor],
                       [*followed, evaluation_id, timer],
                       api_name="runs_evaluate", show_progress="minimal")
    timer.tick(runs_follow, [evaluation_id, token, dataset], [*followed, timer, runs_table], api_name="runs_follow",
               show_progress="hidden")
    cancel_btn.click(runs_cancel, [evaluation_id, token], [*followed, timer], api_name="runs_cancel",
                     show_progress="minimal")
    compare_btn.click(runs_compare, [run_a, run_b], [deltas, side_by_side], api_name="runs_compare",
                      show_progress="minimal")
    gr.on([metric.input, axis.input], runs_curve, [dataset, metric, axis], [curve], api_name="runs_curve",
          show_progress="hidden")
    open_outputs = [dataset, *list_outputs]
    if ctx.tab is not None:
        ctx.tab.select(on_open, [dataset, metric, axis], open_outputs, api_visibility="private",
                       show_progress="hidden")
    else:
        ctx.on_load(on_open, [dataset, metric, axis], open_outputs)
