"""Every listener of the app, public or private, finds out who is asking before it does anything.

Private listeners are hidden from the API docs and from gradio_client, but a signed-in browser can call any
of them by its index over raw HTTP: each must authorize first. A listener that takes no request must be one
that only reshapes the values it is given (no database, no files, no model) and is named here.
"""
from __future__ import annotations

import inspect

import gradio as gr
import pytest

from curation.services.permissions import PermissionDenied

# Listeners that read nothing but their own inputs: moving a page number, toggling a button, reshaping a table.
ONLY_RESHAPE_THEIR_INPUTS = {
    "<lambda>", "add_pasted", "edit", "method_chosen", "open_clicked", "open_row", "pick_example",
    "keep_outputs_after_refusal",
}
# Listeners that answer an anonymous request with nothing rather than an error: the page-load runner and its
# twin for a role's tab opened first (each of their steps is checked below on its own), the hint (it must never
# get in a writer's way) and the browser's copy of an unsaved form (it holds only what the browser sent).
ANSWER_NOBODY_WITH_NOTHING = {"page_loaded", "tab_opened_first", "show", "remember"}


def request_parameter(fn) -> str | None:
    for name, parameter in inspect.signature(fn).parameters.items():
        if parameter.annotation in (gr.Request, "gr.Request", "gr.Request | None"):
            return name
    return None


def event_parameters(fn) -> list[str]:
    return [name for name, p in inspect.signature(fn).parameters.items()
            if isinstance(p.annotation, str) and "Data" in p.annotation
            or isinstance(p.annotation, type) and issubclass(p.annotation, gr.EventData)]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from curation.config import Settings
    from curation.ui.app import build_app
    from curation.ui.context import AppContext
    from db.engine import open_database

    url = f"sqlite:///{tmp_path_factory.mktemp('listeners') / 'studio.db'}"
    engine = open_database(url)
    ctx = AppContext(settings=Settings(database_url=url), engine=engine)
    demo = build_app(ctx)
    yield ctx, demo
    engine.dispose()


def every_listener(ctx, demo):
    """(fn, number of inputs) of every listener and of every page-load step."""
    found = [(block.fn, len(block.inputs)) for block in demo.fns.values() if block.fn is not None]
    for fn, inputs, _, then in ctx._loads:
        found.append((fn, len(inputs)))
        if then is not None:
            found.append((then[0], len(then[1])))
    return found


def test_every_listener_that_reads_data_refuses_a_request_from_nobody(app):
    ctx, demo = app
    nobody = gr.Request(username=None)
    unchecked, answered = [], []
    for fn, inputs in every_listener(ctx, demo):
        name = fn.__name__
        request = request_parameter(fn)
        if request is None:
            if name not in ONLY_RESHAPE_THEIR_INPUTS:
                unchecked.append(f"{fn.__module__}.{name}")
            continue
        if name in ANSWER_NOBODY_WITH_NOTHING:
            continue
        kwargs = {request: nobody, **{event: None for event in event_parameters(fn)}}
        try:
            answer = fn(*[None] * inputs, **kwargs)
            if inspect.isgenerator(answer):  # a streaming listener runs when its first value is asked for
                next(answer)
        except (PermissionDenied, gr.Error) as refused:
            message = refused.message if isinstance(refused, gr.Error) else str(refused)
            if "sign in first" not in message:
                answered.append(f"{fn.__module__}.{name}: {message}")
        except Exception as error:  # it looked at its inputs before asking who is there
            answered.append(f"{fn.__module__}.{name}: {type(error).__name__}: {error}")
        else:
            answered.append(f"{fn.__module__}.{name}: answered")
    assert unchecked == [], "listeners that never ask who is signed in"
    assert answered == [], "listeners that did not refuse nobody first"


def test_the_quiet_listeners_give_nobody_nothing(app):
    ctx, demo = app
    nobody = gr.Request(username=None)
    hints = [fn for fn, _ in every_listener(ctx, demo) if fn.__name__ == "show"]
    assert hints and all(fn("demo", "Name the capital of France.", "", "Paris", None, nobody) == "" for fn in hints)
