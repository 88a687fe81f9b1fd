"""The Blocks: a top bar, then one tab per tab module (built-in and plug-in), wired to the page load."""
from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import gradio as gr

from curation.ui.context import AppContext
from curation.ui.refusals import keep_outputs_on_refusal
from curation.ui.safe import esc

# Gradio's queue recomputes its per-endpoint timing summary (a pandas DataFrame of up to 10,000 past events,
# grouped) after every event by default. The editors send several events per keystroke, and on 2 cores that
# was a third of the server's busy time while someone typed into a 52k dataset (py-spy), putting the hint's
# answer in the browser from about 1.0 s to 0.85 s (p50). Read when a Blocks' queue is made; set before any is.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "500")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "2000")

log = logging.getLogger("instruct_studio.ui")
ASSETS = Path(__file__).parent / "assets"


def tab_modules() -> list[ModuleType]:
    """Every curation/ui/*_tab.py module with a build(ctx), in TAB_ORDER; a broken one is logged and skipped."""
    import curation.ui as package

    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.endswith("_tab"):
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
        except Exception:  # one broken plug-in tab must not keep the annotators out
            log.exception("tab module %s failed to import; skipped", info.name)
            continue
        if callable(getattr(module, "build", None)) and getattr(module, "TAB_TITLE", None):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "TAB_ORDER", 100), m.__name__))


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="Instruct Studio") as demo:
        with gr.Row(elem_classes=["topbar"]):
            gr.HTML('<div class="brand">Instruct Studio <span>instruction data, written and reviewed</span></div>')
            who = gr.HTML('<div class="who"></div>', elem_id="signed-in")
        ctx.open_request = gr.Textbox(visible=False, label="open request")
        role_tabs = []
        opened_later: set[int] = set()  # page-load steps (by id) that run when their tab is first opened instead
        # An admin has fifteen tabs: they wrap onto a second row rather than hide in a "More tabs" menu, so every
        # tab a role may use is in sight.
        with gr.Tabs(overflow_behavior="wrap") as tabs:
            ctx.tabs = tabs
            for module in tab_modules():
                name = module.__name__.rsplit(".", 1)[-1]
                roles = getattr(module, "TAB_ROLES", None)
                # Gradio 6 shows a hidden Tab when a listener says visible=True but never hides a shown one (the
                # button stays), so a role's tab starts hidden and the page load shows it to those who may use it.
                with gr.Tab(module.TAB_TITLE, id=name, elem_id=f"tab-{name}", visible=not roles) as tab:
                    ctx.tab = tab
                    before = len(ctx._loads)
                    try:
                        module.build(ctx)
                    except Exception:
                        log.exception("tab %s failed to build", name)
                        gr.Markdown("This tab could not be built; the error was logged for the admin.")
                    if roles and len(ctx._loads) > before:
                        # A role's tab starts hidden, so it is never the one shown first: what it loads waits until
                        # it is first opened. Every output of the page load costs each later event of the page a
                        # search of Gradio's whole layout tree (its loading-status pass), so the page load is kept
                        # to the tabs everyone sees.
                        steps = ctx._loads[before:]
                        on_first_open(ctx, tab, steps)
                        opened_later.update(id(step) for step in steps)
                if roles:
                    role_tabs.append((tab, {getattr(r, "value", r) for r in roles}))

        for state in ctx._browser_states:
            state.render()

        @ctx.friendly
        def signed_in(request: gr.Request):
            actor = ctx.actor(request)
            line = (f'<div class="who">Signed in as <b>{esc(actor.name)}</b> '
                    f'<span class="role">{esc(actor.role.value)}</span> · <a href="logout">Sign out</a></div>')
            shown = [gr.update(visible=actor.role.value == "admin" or actor.role.value in roles)
                     for _, roles in role_tabs]
            return (line, *shown)

        # One listener for the whole page load: a round trip per tab, each asking who is signed in, kept the
        # page busy for seconds on a small machine.
        steps = [(signed_in, [], [who, *[tab for tab, _ in role_tabs]], None),
                 *[step for step in ctx._loads if id(step) not in opened_later]]
        load_fn, load_inputs, load_outputs = page_load(ctx, steps)
        demo.load(load_fn, load_inputs, load_outputs, api_visibility="private", show_progress="hidden")
        keep_outputs_on_refusal(demo)  # last: it covers every listener registered above
    return demo


def page_load(ctx: AppContext, steps: list[tuple]) -> tuple[Callable, list, list]:
    """One listener (fn, inputs, outputs) that runs every page-load step (fn, inputs, outputs, then), in order.

    Each step's `then` runs right after it, reading the inputs its step has just answered; a step that fails
    leaves its outputs as they are (the toast says why), skips its `then`, and the other steps still answer.
    Who is signed in and the dataset names are read once for all of them (ctx.page_load).
    """
    inputs = _distinct([c for _, step_inputs, _, then in steps for c in [*step_inputs, *(then[1] if then else [])]])
    outputs = _distinct([c for _, _, step_outputs, then in steps for c in [*step_outputs, *(then[2] if then else [])]])

    def page_loaded(request: gr.Request, *values):
        shown = {id(c): v for c, v in zip(inputs, values)}  # what the page holds; the answers so far go over it
        answers: dict[int, Any] = {}
        with ctx.page_load():
            for fn, step_inputs, step_outputs, then in steps:
                for part in (fn, step_inputs, step_outputs), then:
                    if part is None:
                        continue
                    answered = _step_answers(*part, [_value(shown, answers, c) for c in part[1]], request)
                    if answered is None:
                        break
                    for component, answer in zip(part[2], answered):
                        key = id(component)
                        answers[key] = _merged(answers[key], answer) if key in answers else answer
        result = [answers.get(id(c), gr.skip()) for c in outputs]
        return result[0] if len(result) == 1 else tuple(result)

    return page_loaded, inputs, outputs


def on_first_open(ctx: AppContext, tab: gr.Tab, steps: list[tuple]) -> None:
    """Run these page-load steps (see page_load) when the tab is first opened in a page, instead of at its load."""
    fn, inputs, outputs = page_load(ctx, steps)
    opened = gr.State(False)

    def tab_opened_first(request: gr.Request, was_opened: bool, *values):
        if was_opened:
            return (True, *[gr.skip()] * len(outputs))
        answers = fn(request, *values)
        return (True, *((answers,) if len(outputs) == 1 else answers))

    tab.select(tab_opened_first, [opened, *inputs], [opened, *outputs], api_visibility="private",
               show_progress="hidden")


def _distinct(components: list) -> list:
    seen: set[int] = set()
    return [c for c in components if not (id(c) in seen or seen.add(id(c)))]


def _is_update(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("__type__") == "update"


def _value(shown: dict[int, Any], answers: dict[int, Any], component) -> Any:
    """What `component` holds once the answers so far are applied."""
    value = shown.get(id(component))
    answer = answers.get(id(component), gr.skip())
    if not _is_update(answer):
        return answer
    return answer.get("value", value)


def _merged(first: Any, second: Any) -> Any:
    """One component's answer from two steps: the second's value and settings over the first's."""
    if not _is_update(second):
        return {**first, "value": second} if _is_update(first) else second
    if _is_update(first):
        return {**first, **second}
    return second if "value" in second else {**second, "value": first}


def _request_parameter(fn: Callable) -> str | None:
    """The name of fn's gr.Request parameter, which Gradio would fill in; None if it takes none."""
    for name, parameter in inspect.signature(fn).parameters.items():
        hint = parameter.annotation
        if hint is gr.Request or (isinstance(hint, str) and hint.split("|")[0].strip().rsplit(".", 1)[-1] == "Request"):
            return name
    return None


def _step_answers(fn: Callable, inputs: list, outputs: list, values: list, request: gr.Request) -> list | None:
    """fn's answers, one per output; None (logged, or shown as a warning) when it failed."""
    name = _request_parameter(fn)
    try:
        result = fn(*values, **({name: request} if name else {}))
        answers = [] if not outputs else [result] if len(outputs) == 1 else list(result)
        if len(answers) != len(outputs):
            raise ValueError(f"{len(answers)} answers for {len(outputs)} outputs")
        return answers
    except gr.Error as refused:
        gr.Warning(refused.message)
    except Exception:  # one tab's failure must not keep the others empty
        log.exception("page-load step %s failed", getattr(fn, "__name__", fn))
    return None


def launch_options() -> dict:
    """The look and the keyboard shortcuts, given to Blocks.launch (Gradio 6 takes them there)."""
    return {
        # System fonts: the page must not load anything from elsewhere (no Google Fonts).
        "theme": gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                                font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                                font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]),
        "css": (ASSETS / "studio.css").read_text(encoding="utf-8"),
        "head": (ASSETS / "shortcuts.html").read_text(encoding="utf-8"),
    }
