"""Input fields that refuse bad values with a short message instead of a traceback."""
from __future__ import annotations

import html
import os

import gradio as gr


def hub_token(typed: str | None) -> str | None:
    """The Hugging Face token for one action: what was typed in the password box, else HF_TOKEN (never kept)."""
    return (typed or "").strip() or os.environ.get("HF_TOKEN") or None


class WholeNumber(gr.Number):
    """A gr.Number holding an id, a version or a page: anything but a whole number is refused in plain words.

    A plain gr.Number fails inside Gradio's preprocessing on "abc" (an API call can send anything), which
    logs a traceback and answers with a generic error; this says what was wrong and logs nothing.
    """

    is_template = True  # drawn by the frontend's own Number component

    def preprocess(self, payload):
        if payload is None or payload == "":
            return None
        what = self.label or "this field"
        if isinstance(payload, str) and payload.strip().lstrip("-").isdigit():
            payload = int(payload.strip())
        if isinstance(payload, float) and payload.is_integer():  # the browser sends 3.0 for 3
            payload = int(payload)
        if isinstance(payload, bool) or not isinstance(payload, int):
            raise gr.Error(html.escape(f"The {what} must be a whole number, not {payload!r}.", quote=False),
                           duration=8, print_exception=False)
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as exc:  # out of bounds: Gradio's own message, without the traceback
            raise gr.Error(html.escape(f"The {what} {exc}", quote=False), print_exception=False) from None
