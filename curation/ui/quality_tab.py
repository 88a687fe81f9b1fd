"""Quality: score a dataset (LLM judge, IFD, cheap signals), look at each score's histogram with a minimum and a
live counter, choose a budget and a diversity threshold, see the map coloured by a score, save the selection,
compare it with another, read what DEITA's rule left out, and publish it to the Hub as its own config.

Public listeners (scriptable with gradio_client): quality_view, quality_counter, quality_score_judge,
quality_score_ifd, quality_score_signals, quality_save_rubric, quality_preview, quality_save_selection,
quality_map, quality_left_out, quality_compare, quality_publish, quality_delete.
"""
from __future__ import annotations


import gradio as gr
import numpy as np

from curation import selection as rules
from curation.llm.choices import model_choices
from curation.services import quality_view as quality_service
from curation.services import scores, selections
from curation.services.drafting import backend_of
from curation.services.errors import InvalidInput
from curation.services.permissions import Role, authorize
from curation.services.quality_view import NUMERIC_SCORES, Distribution
from curation.ui import quality_views as views
from curation.ui.context import AppContext
from curation.ui.inputs import hub_token
from curation.ui.near_duplicate_hint import open_record_on_click, shared_embedder

TAB_TITLE = "Quality"
TAB_ORDER = 65
TAB_ROLES = ("curator",)  # admins see every tab; the handlers check roles themselves
SCORE_CHOICES = [(label, name) for name, label in NUMERIC_SCORES.items()]
METHODS = {"DEITA: best first, only records far from those taken": "deita", "Top N by score": "top",
           "Every record at or above the minimum": "threshold"}
FORMATS = ["messages", "alpaca", "sharegpt"]



def _method(label: str | None) -> str:
    return METHODS.get(label or "", label if label in METHODS.values() else "deita")


def _weights(order_by: str | None, score: str | None) -> dict[str, float]:
    """The recipe's weights: what "Order by" says (e.g. judge:1,ifd:0.5), else the histogram's score."""
    try:
        return rules.parse_weights(order_by) if (order_by or "").strip() else {score or "judge": 1.0}
    except ValueError as error:
        raise InvalidInput(f"order by: {error}") from None


def _pack(found: dict[str, Distribution]) -> dict:
    """The distributions as the page's State keeps them (plain lists, so a copy per session is cheap)."""
    return {name: {"values": d.values.tolist(), "ids": d.ids, "records": d.records} for name, d in found.items()}


def _unpack(state: dict | None, name: str) -> Distribution | None:
    item = (state or {}).get(name)
    return None if item is None else Distribution(name, np.asarray(item["values"], dtype=np.float64), item["ids"],
                                                   item["records"])


def build(ctx: AppContext) -> None:
    with gr.Row(elem_classes=["qv-controls"]):
        dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, scale=2, elem_id="quality-dataset")
        summary = gr.Markdown("Choose a dataset.", elem_id="quality-summary")
    with gr.Accordion("Score the dataset", open=True, elem_id="quality-scoring"):
        with gr.Row(equal_height=True):
            labels = [c.label for c in model_choices(ctx.settings)]  # the server's settings: fixed per process
            judge_model = gr.Dropdown(label="Judge model", choices=labels, value=labels[0] if labels else None,
                                      scale=2, elem_id="quality-judge-model")
            judge_btn = gr.Button("Rate with the judge (AlpaGasus, 0 to 5)", variant="primary", scale=2,
                                  elem_id="quality-judge")
            ifd_model = gr.Textbox(label="Causal LM for IFD (a folder or a Hub name)", scale=2,
                                   placeholder="Qwen/Qwen2.5-0.5B", elem_id="quality-ifd-model")
            ifd_btn = gr.Button("Measure IFD and perplexity", scale=1, elem_id="quality-ifd")
            signals_btn = gr.Button("Compute length, diversity, distance, language", scale=1,
                                    elem_id="quality-signals")
        with gr.Accordion("The judge's rubric for this dataset", open=False):
            rubric = gr.Textbox(label="Rubric (empty: AlpaGasus's default; SNI tasks use their own definition)",
                                lines=6, elem_id="quality-rubric")
            rubric_btn = gr.Button("Save the rubric", size="sm", elem_id="quality-save-rubric")
        score_status = gr.Markdown(elem_id="quality-score-status")
    with gr.Row():
        with gr.Column(scale=1):
            score = gr.Radio(SCORE_CHOICES, value="judge", label="Score", elem_id="quality-score")
            histogram = gr.Plot(views.histogram(None, None), show_label=False, elem_id="quality-histogram")
            minimum = gr.Slider(0, 5, value=4, step=0.5, label="Minimum score", elem_id="quality-minimum")
            counter = gr.Markdown(elem_id="quality-counter")
        with gr.Column(scale=1, elem_id="quality-selecting"):
            method = gr.Radio(list(METHODS.items()), value="deita", label="Select by", elem_id="quality-method")
            order_by = gr.Textbox(label="Order by (empty: the score on the left; or a mix such as judge:1,ifd:0.5)",
                                  elem_id="quality-order-by")
            budget = gr.Slider(1, 100, value=100, step=1, label="Budget: records to select", elem_id="quality-budget")
            spread = gr.Slider(0.0, 0.5, value=0.1, step=0.01, label="Diversity: least cosine distance to every "
                               "record already taken", elem_id="quality-spread")
            preview = gr.Markdown(elem_id="quality-preview")
            with gr.Row(equal_height=True):
                name = gr.Textbox(label="Selection name (becomes its Hub config)", value="best", scale=2,
                                  elem_id="quality-selection-name")
                save_btn = gr.Button("Save the selection", variant="primary", scale=1, elem_id="quality-save")
    with gr.Tabs(elem_classes=["qv-root"]):
        with gr.Tab("Map", id="quality-map-tab"):
            map_btn = gr.Button("Draw the map", size="sm", elem_id="quality-map-draw")
            map_plot = gr.Plot(views.score_map(None, "judge"), show_label=False, elem_id="quality-map")
            gr.Markdown("Coloured by the score on the left; the records the selection would take are ringed. "
                        "Click a point to open the record.", elem_classes=["hint"])
        with gr.Tab("Selections", id="quality-selections-tab"):
            selections_table = gr.Dataframe(interactive=False, wrap=True, show_label=False,
                                            elem_id="quality-selections")
            with gr.Row(equal_height=True):
                chosen = gr.Dropdown(label="Selection", choices=[], allow_custom_value=True, scale=2,
                                     elem_id="quality-chosen")
                other = gr.Dropdown(label="Compare with", choices=[], allow_custom_value=True, scale=2,
                                    elem_id="quality-other")
                compare_btn = gr.Button("Compare", scale=1, elem_id="quality-compare")
                delete_btn = gr.Button("Delete the selection", variant="stop", scale=1, elem_id="quality-delete")
            compare_line = gr.Markdown(elem_id="quality-comparison")
            left_out = gr.HTML(elem_id="quality-left-out", elem_classes=["dv-root"])
            with gr.Row(equal_height=True):
                repo_id = gr.Textbox(label="Hub dataset repo (namespace/name)", scale=2, elem_id="quality-repo")
                token = gr.Textbox(label="Hugging Face token (this action only; HF_TOKEN if empty)", type="password",
                                   scale=2, elem_id="quality-token")
                config_format = gr.Dropdown(FORMATS, value="messages", label="Format", scale=1,
                                            elem_id="quality-format")
                private = gr.Checkbox(value=True, label="Private", scale=1)
                publish_btn = gr.Button("Publish the selection as its own config", variant="primary", scale=2,
                                        elem_id="quality-publish")
            publish_line = gr.Markdown(elem_id="quality-published")
    state = gr.State({})  # {score name: its distribution}, so the counter answers without the database
    taken_state = gr.State([])  # record ids the previewed recipe takes, ringed on the map
    report_state = gr.State(None)
    open_record_on_click(ctx, ".qv-root")

    # ---- handlers ------------------------------------------------------------------------------

    def curator(request):
        actor = ctx.actor(request)
        ctx.require(actor, Role.curator)
        return actor

    def need(dataset_v):
        if not dataset_v:
            raise InvalidInput("choose a dataset first")
        return dataset_v

    def score_view(state_v, score_v, minimum_v, moved: bool):
        """(histogram, slider, counter) for the score; the slider keeps the curator's minimum unless the score
        changed (`moved`), when it goes to the score's range."""
        found = _unpack(state_v, score_v)
        low, high, step = views.slider_range(found)
        value = float(minimum_v if minimum_v is not None else low)
        if moved or not low <= value <= high:
            value = float(np.median(found.values)) if found is not None and len(found.values) else low
            value = float(low + np.floor((value - low) / step) * step) if step else value  # one the slider holds
        slider = gr.update(minimum=low, maximum=high, step=step, value=value)
        counter_v = found.counter(value) if found is not None else "Choose a dataset."
        return views.histogram(found, value), slider, counter_v

    @ctx.friendly
    def quality_view(dataset_v, score_v, minimum_v, request: gr.Request = None):
        """Everything the tab shows for a dataset: score summary, histogram, counter, budget, selections, rubric."""
        curator(request)
        need(dataset_v)
        with ctx.session() as session:
            found = quality_service.distributions(session, dataset=dataset_v)
            summaries = selections.selections(session, dataset=dataset_v)
            rubric_v = scores.rubric_of(session, dataset=dataset_v)
        packed = _pack(found)
        records = next(iter(found.values())).records if found else 0
        scored = ", ".join(f"{NUMERIC_SCORES[n].split(' (')[0].lower()} {len(d.values):,}"
                           for n, d in found.items() if len(d.values)) or "nothing scored yet"
        line = f"**{records:,}** live records · scored: {scored}"
        names = [s.name for s in summaries]
        return (line, packed, *score_view(packed, score_v, minimum_v, True),
                # the slider's minimum is 1 and Gradio refuses a maximum that is not above it
                gr.update(maximum=max(records, 2), value=min(max(records // 10, 1), max(records, 1))),
                views.selections_frame(summaries), gr.update(choices=names, value=names[0] if names else None),
                gr.update(choices=names, value=names[1] if len(names) > 1 else None), rubric_v)

    @ctx.friendly
    def quality_counter(state_v, score_v, minimum_v, request: gr.Request = None):
        """The histogram and the counter for a minimum (from the page's State: no database round trip)."""
        authorize(ctx.actor(request), "view")
        found = _unpack(state_v, score_v)
        minimum_f = float(minimum_v or 0)
        return views.histogram(found, minimum_f), (found.counter(minimum_f) if found else "")

    @ctx.friendly
    def score_chosen(state_v, score_v, minimum_v, request: gr.Request = None):
        authorize(ctx.actor(request), "view")
        return score_view(state_v, score_v, minimum_v, True)

    def finished(run) -> str:
        line = (f"Scored {run.dataset!r} ({', '.join(run.names)}): **{run.computed:,}** records computed, "
                f"{run.reused:,} unchanged since their last score kept, in {run.seconds:.1f} s")
        return line + (f"; **{run.failed:,}** had no readable rating and will be asked again." if run.failed else ".")

    @ctx.friendly
    def quality_score_judge(dataset_v, label, request: gr.Request = None, progress=gr.Progress()):
        """Rate every changed record with the chosen judge model (through the reply cache)."""
        actor = curator(request)
        need(dataset_v)
        _, backend = backend_of(ctx.settings, label)
        progress(0, desc="Asking the judge")
        with ctx.session() as session:
            run = scores.score_with_judge(
                session, dataset=dataset_v, backend=backend, actor=actor, concurrency=ctx.settings.llm_concurrency,
                progress=lambda done, total: progress(done / max(total, 1), desc=f"Rated {done:,} of {total:,}"))
        return finished(run)

    @ctx.friendly
    def quality_score_ifd(dataset_v, model_v, request: gr.Request = None, progress=gr.Progress()):
        """IFD and the output's perplexity of every changed record with a local causal LM."""
        actor = curator(request)
        need(dataset_v)
        if not (model_v or "").strip():
            raise InvalidInput("name the causal LM that measures IFD (a local folder or a Hub name)")
        progress(0, desc="Loading the model")
        with ctx.session() as session:
            run = scores.score_ifd(
                session, dataset=dataset_v, model=model_v.strip(), actor=actor,
                progress=lambda done, total: progress(done / max(total, 1), desc=f"Measured {done:,} of {total:,}"))
        return finished(run)

    @ctx.friendly
    def quality_score_signals(dataset_v, request: gr.Request = None, progress=gr.Progress()):
        """Length, lexical diversity, language of every changed record; every record's nearest-neighbour distance."""
        actor = curator(request)
        need(dataset_v)
        progress(0, desc="Loading the embedding model")
        embedder = shared_embedder(ctx)
        with ctx.session() as session:
            run = scores.score_signals(session, dataset=dataset_v, actor=actor,
                                       vectors=quality_service.embedder_vectors(session, embedder))
        return finished(run)

    @ctx.friendly
    def quality_save_rubric(dataset_v, text, request: gr.Request = None):
        actor = curator(request)
        with ctx.session() as session:
            scores.set_rubric(session, dataset=need(dataset_v), text=text or "", actor=actor)
            text = scores.rubric_of(session, dataset=dataset_v)
        gr.Info("Rubric saved. The judge rates changed and newly ruled records on its next run.")
        return text

    def recipe(score_v, order_v, method_v, budget_v, spread_v, minimum_v):
        method_v = _method(method_v)
        return dict(weights=_weights(order_v, score_v), method=method_v, n=int(budget_v or 0) or None,
                    threshold=float(spread_v or 0), minimum=float(minimum_v) if minimum_v is not None else None)

    @ctx.friendly
    def quality_preview(dataset_v, score_v, order_v, method_v, budget_v, spread_v, minimum_v,
                        request: gr.Request = None):
        """How many records the recipe would take, and how many DEITA would leave out: the live budget counter."""
        curator(request)
        need(dataset_v)
        embedder = shared_embedder(ctx) if _method(method_v) == "deita" else None
        with ctx.session() as session:
            found = selections.preview_selection(
                session, dataset=dataset_v, **recipe(score_v, order_v, method_v, budget_v, spread_v, minimum_v),
                vectors=quality_service.embedder_vectors(session, embedder) if embedder else None)
        return found.sentence(), found.taken_ids

    @ctx.friendly
    def quality_save_selection(dataset_v, name_v, score_v, order_v, method_v, budget_v, spread_v, minimum_v,
                               request: gr.Request = None):
        """Store the selection with its recipe and the dataset revision it ran on."""
        actor = curator(request)
        need(dataset_v)
        embedder = shared_embedder(ctx) if _method(method_v) == "deita" else None
        with ctx.session() as session:
            made = selections.run_selection(
                session, dataset=dataset_v, name=name_v or "", actor=actor,
                **recipe(score_v, order_v, method_v, budget_v, spread_v, minimum_v),
                vectors=quality_service.embedder_vectors(session, embedder) if embedder else None)
            summaries = selections.selections(session, dataset=dataset_v)
        gr.Info(f"Saved selection {made.name!r}: {made.size:,} records.")
        names = [s.name for s in summaries]
        return (views.selections_frame(summaries), gr.update(choices=names, value=made.name),
                gr.update(choices=names, value=next((n for n in names if n != made.name), None)))

    @ctx.friendly
    def quality_map(dataset_v, score_v, taken_v, request: gr.Request = None, progress=gr.Progress()):
        """The map of every live record, coloured by the score, the previewed selection ringed."""
        curator(request)
        need(dataset_v)
        progress(0, desc="Loading the embedding model")
        embedder = shared_embedder(ctx)
        with ctx.session() as session:
            report = quality_service.scored_map(
                session, dataset=dataset_v, embedder=embedder,
                progress=lambda done, total: progress(done / max(total, 1), desc=f"Embedding {done:,} of {total:,}"))
        return views.score_map(report, score_v, set(taken_v or [])), report

    @ctx.friendly
    def redraw_map(report_v, score_v, taken_v, request: gr.Request = None):
        authorize(ctx.actor(request), "view")
        return views.score_map(report_v, score_v, set(taken_v or []))

    @ctx.friendly
    def quality_left_out(dataset_v, chosen_v, request: gr.Request = None):
        """The records the selection's diversity rule skipped, each with the record it was too close to."""
        curator(request)
        if not dataset_v or not chosen_v:
            return ""
        with ctx.session() as session:
            rows = selections.left_out_of(session, dataset=dataset_v, name=chosen_v)
            texts = selections.instructions_of(session, [r for r, _, _ in rows[:200]])
        return views.left_out_html(rows, texts)

    @ctx.friendly
    def quality_compare(dataset_v, a, b, request: gr.Request = None):
        curator(request)
        if not (a and b):
            raise InvalidInput("choose two selections to compare")
        with ctx.session() as session:
            return views.comparison_line(selections.compare_selections(session, dataset=need(dataset_v), a=a, b=b))

    @ctx.friendly
    def quality_publish(dataset_v, chosen_v, repo_v, token_v, format_v, private_v, request: gr.Request = None,
                        progress=gr.Progress()):
        """Push the selection to the Hub as its own config; the dataset card states its recipe."""
        actor = curator(request)
        if not chosen_v:
            raise InvalidInput("choose a selection to publish")
        progress(0, desc="Publishing")
        with ctx.session() as session:
            done = selections.publish_selection(session, dataset=need(dataset_v), name=chosen_v,
                                                repo_id=(repo_v or "").strip(), token=hub_token(token_v),
                                                private=bool(private_v), config_format=format_v or "messages",
                                                actor=actor)
        return (f"Published selection `{done.name}` ({done.records:,} records) to **{done.repo_id}** as config "
                f"`{done.name}` · commit `{done.commit_id[:10]}`. The dataset card states its recipe.")

    @ctx.friendly
    def quality_delete(dataset_v, chosen_v, request: gr.Request = None):
        actor = curator(request)
        if not chosen_v:
            raise InvalidInput("choose a selection to delete")
        with ctx.session() as session:
            selections.delete_selection(session, dataset=need(dataset_v), name=chosen_v, actor=actor)
            summaries = selections.selections(session, dataset=dataset_v)
        gr.Info(f"Deleted selection {chosen_v!r}; its records are untouched.")
        names = [s.name for s in summaries]
        return (views.selections_frame(summaries), gr.update(choices=names, value=names[0] if names else None),
                gr.update(choices=names, value=None), "")

    @ctx.friendly
    def on_open(dataset_v, score_v, minimum_v, opened, request: gr.Request = None):
        """When the tab is first opened: the dataset names, then the first dataset's view."""
        if opened:
            return tuple(gr.skip() for _ in opened_outputs)
        curator(request)
        names = ctx.datasets()
        first = dataset_v if dataset_v in names else (names[0] if names else None)
        if first is None:
            return (gr.update(choices=names, value=None), *(gr.skip() for _ in view_outputs), True)
        return (gr.update(choices=names, value=first), *quality_view(first, score_v, minimum_v, request), True)

    # ---- wiring --------------------------------------------------------------------------------

    view_outputs = [summary, state, histogram, minimum, counter, budget, selections_table, chosen, other, rubric]
    preview_inputs = [dataset, score, order_by, method, budget, spread, minimum]
    # Public listeners before private ones of the same function: the first registered takes its api_name.
    heavy = dict(concurrency_limit=1, concurrency_id="quality-heavy")  # two cores: one model at a time
    quiet = dict(api_visibility="private", show_progress="hidden")
    # Previews run one at a time in the order asked: two at once could end out of order, and the page would then
    # show the recipe before the last change (seen under load: the minimum's preview over the budget's).
    in_order = dict(concurrency_limit=1, concurrency_id="quality-preview")
    dataset.input(quality_view, [dataset, score, minimum], view_outputs, api_name="quality_view",
                  show_progress_on=[summary])
    minimum.change(quality_counter, [state, score, minimum], [histogram, counter], api_name="quality_counter",
                   show_progress="hidden", trigger_mode="always_last")
    score.input(score_chosen, [state, score, minimum], [histogram, minimum, counter], **quiet).then(
        redraw_map, [report_state, score, taken_state], [map_plot], **quiet)
    for button, fn, inputs, api in ((judge_btn, quality_score_judge, [dataset, judge_model], "quality_score_judge"),
                                    (ifd_btn, quality_score_ifd, [dataset, ifd_model], "quality_score_ifd"),
                                    (signals_btn, quality_score_signals, [dataset], "quality_score_signals")):
        button.click(fn, inputs, [score_status], api_name=api, show_progress_on=[score_status], **heavy).success(
            quality_view, [dataset, score, minimum], view_outputs, **quiet)
    rubric_btn.click(quality_save_rubric, [dataset, rubric], [rubric], api_name="quality_save_rubric",
                     show_progress="minimal")
    for control in (budget, spread, minimum):
        control.release(quality_preview, preview_inputs, [preview, taken_state], show_progress="hidden",
                        trigger_mode="always_last", **in_order, **({"api_name": "quality_preview"} if control is budget
                                                       else {"api_visibility": "private"})).then(
            redraw_map, [report_state, score, taken_state], [map_plot], **quiet)
    for control in (method, order_by):
        (control.input if control is method else control.submit)(
            quality_preview, preview_inputs, [preview, taken_state], **quiet, **in_order).then(
            redraw_map, [report_state, score, taken_state], [map_plot], **quiet)
    chosen.input(quality_left_out, [dataset, chosen], [left_out], api_name="quality_left_out",
                 show_progress="hidden")
    save_btn.click(quality_save_selection, [dataset, name, score, order_by, method, budget, spread, minimum],
                   [selections_table, chosen, other], api_name="quality_save_selection",
                   show_progress="minimal", **heavy).success(
        quality_left_out, [dataset, chosen], [left_out], **quiet)
    map_btn.click(quality_map, [dataset, score, taken_state], [map_plot, report_state], api_name="quality_map",
                  show_progress_on=[map_plot], **heavy)
    compare_btn.click(quality_compare, [dataset, chosen, other], [compare_line], api_name="quality_compare",
                      show_progress="minimal")
    publish_btn.click(quality_publish, [dataset, chosen, repo_id, token, config_format, private],
                      [publish_line], api_name="quality_publish", show_progress_on=[publish_line])
    delete_btn.click(quality_delete, [dataset, chosen], [selections_table, chosen, other, left_out],
                     api_name="quality_delete", show_progress="minimal")
    opened = gr.State(False)
    opened_outputs = [dataset, *view_outputs, opened]
    if ctx.tab is not None:
        ctx.tab.select(on_open, [dataset, score, minimum, opened], opened_outputs, api_visibility="private",
                       show_progress_on=[summary])
    else:
        ctx.on_load(on_open, [dataset, score, minimum, opened], opened_outputs)
