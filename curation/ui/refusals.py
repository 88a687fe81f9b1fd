"""A refused or failed action leaves the page as it was: its outputs keep their content, the toast says why.

Gradio marks every output of a listener that raised with a red "Error" badge, and with show_progress "full"
it hides the output's content under it (a queue, a form, a table all read "Error" until something else
updates them). A follow-up listener on failure that updates the same outputs with nothing clears the badge
and shows the content again, so the message appears once, in the toast.
"""
from __future__ import annotations

import gradio as gr
from gradio.events import EventListener


def _unchanged(count: int):
    def unchanged(*_):
        return gr.skip() if count == 1 else tuple(gr.skip() for _ in range(count))

    unchanged.__name__ = "keep_outputs_after_refusal"
    return unchanged


def keep_outputs_on_refusal(demo: gr.Blocks) -> int:
    """Give every listener that shows progress on its outputs a failure follow-up; returns how many got one.

    Call inside `with demo:` once every listener is registered. Listeners with show_progress="hidden"
    draw no badge and need none.
    """
    added = 0
    for block_fn in list(demo.fns.values()):
        if not block_fn.outputs or block_fn.show_progress == "hidden" or block_fn.fn is None:
            continue
        if block_fn.trigger_only_on_failure:
            continue
        follow_up = EventListener("failure", trigger_after=block_fn._id, trigger_only_on_failure=True,
                                  has_trigger=False).listener
        follow_up(None, _unchanged(len(block_fn.outputs)), None, list(block_fn.outputs), show_progress="hidden",
                  api_visibility="private", queue=False)
        added += 1
    return added
