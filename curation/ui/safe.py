"""User text shown safely: Markdown that cannot run scripts or load remote content, and escaped HTML."""
from __future__ import annotations

import html
import re

_IMAGE = re.compile(r"!\[")


def text_markdown(text: str | None) -> str:
    """Markdown for gr.Markdown from user text: raw HTML shown as text, images not loaded."""
    escaped = html.escape(text or "", quote=False)
    # An image would load a remote URL as soon as it renders; show its alt text and address instead.
    return _IMAGE.sub(r"!\\[", escaped)


def esc(text: object) -> str:
    return html.escape("" if text is None else str(text))
