"""The task editor's "Draft with a model" panel: proposed instances and explanations to accept, edit or drop.

Each proposal sits in a slot of its own (a fixed set of boxes, shown and hidden): a person edits one and accepts
it without the others moving, and every listener exists when the app is built, so each authorizes like the rest.
The page holds the proposals in a hidden JSON box by cache key; the server reads the model's words back from its
cache when one is accepted (curation/services/task_drafting.py). Accepting saves the task: while the form differs
from the saved task, accepting is refused rather than letting the saved task replace the person's edits.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from curation.drafting import Sampling
from curation.llm.choices import model_choices
from curation.services import task_drafting
from curation.services.annotation import InvalidInput
from curation.ui.context import AppContext
from curation.ui.inputs import WholeNumber

SLOTS = 8  # proposals under review at once; drafting again fills the slots that are free


@dataclass
class Slot:
    box: gr.Group
    input: gr.Textbox
    output: gr.Textbox
    accept: gr.Button
    drop: gr.Button


@dataclass
class DraftsPanel:
    model: gr.Dropdown
    count: WholeNumber
    draft: gr.Button
    explain: gr.Button
    note: gr.Markdown
    proposals: gr.JSON  # {"task": id, "slots": [proposal or None, ...]}: what the slots show
    fresh: gr.JSON  # the last draft's proposals, as task_draft_instances answers
    slots: list[Slot]
    explanation_box: gr.Group
    explanation: gr.Textbox
    explained: gr.JSON  # {"task", "cache_key", "example"} of the proposed explanation
    accept_explanation: gr.Button
    drop_explanation: gr.Button
    api_accept: gr.Button  # task_accept_instance, for scripts: names the proposal by its values
    api_fields: list


def panel(ctx: AppContext) -> DraftsPanel:
    """The panel's components, built where it is called (inside the editor's column)."""
    labels = [c.label for c in model_choices(ctx.settings)]
    with gr.Accordion("Draft with a model", open=False, elem_id="task-drafts"):
        gr.Markdown("The model reads the saved task. Proposals wait here: accepting one adds it to the task "
                    "and saves; nothing reaches the task otherwise.", elem_classes=["hint"])
        with gr.Row():
            model = gr.Dropdown(label="Model", choices=labels, value=labels[0] if labels else None, scale=3,
                                elem_id="task-draft-model",
                                info=None if labels else "No model is configured: an admin sets LLM_MODEL or "
                                                         "LLM_MODELS.")
            count = WholeNumber(value=3, precision=0, minimum=1, maximum=SLOTS, label="Instances to draft", scale=1,
                                elem_id="task-draft-count")
        with gr.Row():
            draft = gr.Button("Draft instances", variant="primary", size="sm", elem_id="task-draft-instances")
            explain = gr.Button("Draft an explanation", size="sm", elem_id="task-draft-explanation")
        note = gr.Markdown("", elem_id="task-draft-note")
        slots = []
        for n in range(SLOTS):
            with gr.Group(visible=False, elem_id=f"task-proposal-{n}", elem_classes=["proposal"]) as box:
                with gr.Row():
                    source = gr.Textbox(label="Proposed input", lines=2, elem_id=f"task-proposal-{n}-input")
                    output = gr.Textbox(label="Proposed output", lines=2, elem_id=f"task-proposal-{n}-output")
                with gr.Row():
                    accept = gr.Button("Accept", variant="primary", size="sm", min_width=80,
                                       elem_id=f"task-proposal-{n}-accept")
                    drop = gr.Button("Drop", size="sm", min_width=80, elem_id=f"task-proposal-{n}-drop")
            slots.append(Slot(box, source, output, accept, drop))
        with gr.Group(visible=False, elem_id="task-explanation-proposal") as explanation_box:
            explanation = gr.Textbox(label="Proposed explanation", lines=2, elem_id="task-explanation-text")
            with gr.Row():
                accept_explanation = gr.Button("Accept", variant="primary", size="sm", min_width=80,
                                               elem_id="task-explanation-accept")
                drop_explanation = gr.Button("Drop", size="sm", min_width=80, elem_id="task-explanation-drop")
    hidden = dict(visible=False)
    api_fields = [gr.Textbox(label="cache key", **hidden), WholeNumber(label="index", precision=0, **hidden),
                  gr.Textbox(label="input", **hidden), gr.Textbox(label="output", **hidden)]
    return DraftsPanel(model, count, draft, explain, note, gr.JSON(None, **hidden), gr.JSON(None, **hidden), slots,
                       explanation_box, explanation, gr.JSON(None, **hidden), accept_explanation, drop_explanation,
                       gr.Button(**hidden), api_fields)


def _slots_of(proposals, task_id) -> list:
    """The slots' proposals when they belong to task `task_id`; all free otherwise."""
    if isinstance(proposals, dict) and proposals.get("task") == task_id and task_id:
        return (list(proposals.get("slots") or []) + [None] * SLOTS)[:SLOTS]
    return [None] * SLOTS


def wire(ctx: AppContext, drafts: DraftsPanel, *, task_id, version, example, fields, form_of, show,
         view_outputs) -> list:
    """The panel's listeners; returns the events that save the task (the editor refreshes its checks after).

    `fields` are the editor's form components and `form_of(*their values)` its TaskForm.
    """
    private = dict(api_visibility="private", show_progress="hidden")
    boxes = [s.box for s in drafts.slots]
    texts = [t for s in drafts.slots for t in (s.input, s.output)]

    @ctx.friendly
    def task_draft_instances(task_id_v, model_v, count_v, attempt, request: gr.Request):
        """Proposals of new instances for the saved task (nothing is added until each is accepted)."""
        actor = ctx.actor(request)
        # Drafting again asks with another seed: the same request would only answer from the cache.
        sampling = Sampling(max_tokens=task_drafting.instance_tokens(int(count_v or 0)), seed=int(attempt or 0))
        with ctx.session() as session:
            found = task_drafting.propose_instances(session, actor, ctx.settings, task_id=task_id_v,
                                                    count=count_v or 0, model_label=model_v, sampling=sampling)
        fresh = {"task": task_id_v, "proposals": [dict(cache_key=f.cache_key, index=f.index, input=f.input,
                                                        output=f.output) for f in found.proposals]}
        return fresh, found.note(), int(attempt or 0) + 1

    @ctx.friendly
    def place_proposals(task_id_v, proposals_v, fresh_v, note_v, request: gr.Request):
        """Fill the free slots with the new proposals; the slots under review stay as the person left them."""
        ctx.actor(request)
        slots = _slots_of(proposals_v, task_id_v)
        held = {s["input"] for s in slots if s}
        waiting = [f for f in (fresh_v or {}).get("proposals") or [] if f.get("input") not in held]
        shown, values = [gr.skip()] * SLOTS, [gr.skip()] * (2 * SLOTS)
        for n in range(SLOTS):
            if slots[n] is None and waiting:
                slots[n] = waiting.pop(0)
                shown[n] = gr.update(visible=True)
                values[2 * n], values[2 * n + 1] = slots[n]["input"], slots[n]["output"]
        left = f" {len(waiting)} more did not fit: accept or drop some, then draft again." if waiting else ""
        return {"task": task_id_v, "slots": slots}, *shown, *values, (note_v or "") + left

    def slot_listeners(n: int, slot: Slot) -> object:
        @ctx.friendly
        def accept_proposal(task_id_v, version_v, proposals_v, input_v, output_v, request: gr.Request):
            """Add the proposal in slot n (as edited) to the task and save it."""
            actor = ctx.actor(request)
            slots = _slots_of(proposals_v, task_id_v)
            if slots[n] is None:
                raise InvalidInput("this proposal is no longer under review: draft again")
            with ctx.session() as session:
                view = task_drafting.accept_instance(
                    session, actor, task_id=task_id_v, expected_version=version_v, cache_key=slots[n]["cache_key"],
                    index=slots[n]["index"], input=input_v, output=output_v)
            slots[n] = None
            gr.Info(f"Instance {len(view.form.instances)} added: task saved as version {view.version}.")
            return (*show(view, actor.name), {"task": task_id_v, "slots": slots}, gr.update(visible=False))

        @ctx.friendly
        def drop_proposal(task_id_v, proposals_v, request: gr.Request):
            """Forget the proposal in slot n."""
            ctx.actor(request)
            slots = _slots_of(proposals_v, task_id_v)
            slots[n] = None
            return {"task": task_id_v, "slots": slots}, gr.update(visible=False)

        slot.drop.click(drop_proposal, [task_id, drafts.proposals], [drafts.proposals, slot.box], **private)
        return slot.accept.click(must_be_saved, [task_id, *fields], None, **private).success(
            accept_proposal, [task_id, version, drafts.proposals, slot.input, slot.output],
            [*view_outputs, drafts.proposals, slot.box], **private)

    @ctx.friendly
    def task_accept_instance(task_id_v, version_v, cache_key, index, input_v, output_v, request: gr.Request):
        """Add a proposed instance (by its cache key and index, as edited) to the task and save it."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            view = task_drafting.accept_instance(session, actor, task_id=task_id_v, expected_version=version_v,
                                                 cache_key=cache_key, index=index, input=input_v, output=output_v)
        return show(view, actor.name)

    @ctx.friendly
    def task_draft_explanation(task_id_v, example_v, model_v, request: gr.Request):
        """A proposed explanation for example `example` (as numbered in the table; empty: the first without one)."""
        actor = ctx.actor(request)
        position = int(example_v) - 1 if example_v else None
        with ctx.session() as session:
            found = task_drafting.propose_explanation(session, actor, ctx.settings, task_id=task_id_v,
                                                      example_position=position, model_label=model_v)
        label = f"Proposed explanation of example {found.index + 1} ({found.input} → {found.output})"
        return ({"task": task_id_v, "cache_key": found.cache_key, "example": found.index + 1},
                gr.update(value=found.text, label=label[:160]), gr.update(visible=True))

    @ctx.friendly
    def must_be_saved(task_id_v, dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v, domains_v,
                      examples_v, instances_v, request: gr.Request):
        """Nothing, or a refusal while the form holds edits the task has not saved."""
        actor = ctx.actor(request)
        form = form_of(dataset_v, name_v, definition_v, emphasis_v, avoid_v, categories_v, domains_v, examples_v,
                       instances_v)
        with ctx.session() as session:
            if task_id_v and task_drafting.unsaved_edits(session, actor, task_id_v, form):
                raise InvalidInput("save the task first: accepting a proposal saves it, and your unsaved edits "
                                   "would be lost")

    @ctx.friendly
    def task_accept_explanation(task_id_v, version_v, explained_v, text_v, request: gr.Request):
        """Set the proposed explanation (as edited) on its example and save the task."""
        actor = ctx.actor(request)
        explained_v = explained_v if isinstance(explained_v, dict) else {}
        if not explained_v.get("example") or explained_v.get("task") != task_id_v:
            raise InvalidInput("draft an explanation for this task first")
        with ctx.session() as session:
            view = task_drafting.accept_explanation(
                session, actor, task_id=task_id_v, expected_version=version_v, example_position=int(
                    explained_v["example"]) - 1, text=text_v, cache_key=explained_v.get("cache_key"))
        gr.Info(f"Explanation of example {explained_v['example']} saved: version {view.version}.")
        return (*show(view, actor.name), None, gr.update(visible=False))

    @ctx.friendly
    def drop_explanation(request: gr.Request):
        ctx.actor(request)
        return None, gr.update(visible=False)

    @ctx.friendly
    def forget_other_tasks(task_id_v, proposals_v, explained_v, request: gr.Request):
        """Hide the proposals of a task that is no longer open."""
        ctx.actor(request)
        mine = isinstance(proposals_v, dict) and proposals_v.get("task") == task_id_v and task_id_v
        explained = isinstance(explained_v, dict) and explained_v.get("task") == task_id_v and task_id_v
        if mine and explained:
            return (gr.skip(),) * (3 + SLOTS)
        cleared = [gr.skip()] * (1 + SLOTS) if mine else [None, *[gr.update(visible=False)] * SLOTS]
        return (*cleared, *((gr.skip(), gr.skip()) if explained else (None, gr.update(visible=False))))

    attempt = gr.State(0)
    drafted = drafts.draft.click(task_draft_instances, [task_id, drafts.model, drafts.count, attempt],
                                 [drafts.fresh, drafts.note, attempt], api_name="task_draft_instances",
                                 show_progress="minimal")
    drafted.success(place_proposals, [task_id, drafts.proposals, drafts.fresh, drafts.note],
                    [drafts.proposals, *boxes, *texts, drafts.note], **private)
    saved = [slot_listeners(n, slot) for n, slot in enumerate(drafts.slots)]
    saved.append(drafts.api_accept.click(task_accept_instance, [task_id, version, *drafts.api_fields], view_outputs,
                                         api_name="task_accept_instance", show_progress="hidden"))
    drafts.explain.click(task_draft_explanation, [task_id, example, drafts.model],
                         [drafts.explained, drafts.explanation, drafts.explanation_box],
                         api_name="task_draft_explanation", show_progress="minimal")
    saved.append(drafts.accept_explanation.click(must_be_saved, [task_id, *fields], None, **private).success(
        task_accept_explanation, [task_id, version, drafts.explained, drafts.explanation],
        [*view_outputs, drafts.explained, drafts.explanation_box], api_name="task_accept_explanation",
        show_progress="hidden"))
    drafts.drop_explanation.click(drop_explanation, None, [drafts.explained, drafts.explanation_box], **private)
    task_id.change(forget_other_tasks, [task_id, drafts.proposals, drafts.explained],
                   [drafts.proposals, *boxes, drafts.explained, drafts.explanation_box], **private)
    return saved
