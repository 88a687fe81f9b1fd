"""Unfilled template placeholders: the first one found in a text, or None.

A record built from a template whose slots were never filled ("You may refer to me as {{name}}") teaches the
model to say the slot. Four spellings are found: {{name}}, {name}, <NAME> and [PLACEHOLDER] (or [Your Name]).
Text in Markdown code (fenced or inline) is skipped, and so are braces that code, LaTeX, HTML tags and Markdown
links use: the shapes each pattern allows are narrow for that reason.
"""
from __future__ import annotations

import re

_CODE = re.compile(r"```.*?(```|\Z)|`[^`\n]*`", re.DOTALL)
_DOUBLE_BRACES = re.compile(r"\{\{\s*[^{}\n]{1,60}?\s*\}\}")
# {name}: an identifier alone in single braces, not after a word, '\', '$', '%', '^', '_' or '}' (LaTeX, shell,
# format strings, set-builder notation) and not itself inside {{ }}.
_SINGLE_BRACES = re.compile(r"(?<![\w\\$%^}{#])\{([A-Za-z][A-Za-z0-9_]*(?:[ _-][A-Za-z0-9]+){0,3})\}(?!\})")
# Code that formats strings holds {name} by design.
_FORMAT_CODE = re.compile(r"""\bf["']|\.format\(|\bprint\(|\$\{|=>|\bdef |\breturn\b""")
_ANGLE = re.compile(r"(?<![\w<])<([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)>")
_BRACKETS = re.compile(r"(?<![\w\]])\[([A-Z][A-Z0-9]+(?:[ _][A-Z0-9]+)*)\](?![(\[:])")
_BRACKET_PHRASE = re.compile(
    r"(?<![\w\]])\[((?:your|insert|enter|recipient'?s?|sender'?s?|company|customer'?s?|first|last|full)"
    r"(?: [\w'-]+){0,4}(?: name| here)?)\](?![(\[:])", re.IGNORECASE)
HTML_TAGS = frozenset(
    "A ABBR B BR BODY BUTTON CODE DIV EM FONT FORM H1 H2 H3 H4 H5 H6 HEAD HR HTML I IMG INPUT LI LINK META OL OPTION "
    "P PRE S SCRIPT SELECT SMALL SPAN STRONG STYLE SUB SUP TABLE TBODY TD TH THEAD TITLE TR U UL".split())


def unfilled_placeholder(text: str) -> str | None:
    """The first unfilled template slot in the text as written, or None when it has none."""
    if not any(c in text for c in "{<["):
        return None
    prose = _CODE.sub(" ", text)
    if found := _DOUBLE_BRACES.search(prose):
        return found.group(0)
    for line in prose.splitlines():
        if "{" in line and not _FORMAT_CODE.search(line) and (found := _SINGLE_BRACES.search(line)):
            return found.group(0)
    for found in _ANGLE.finditer(prose):
        if found.group(1) not in HTML_TAGS:
            return found.group(0)
    if found := _BRACKETS.search(prose) or _BRACKET_PHRASE.search(prose):
        return found.group(0)
    return None
