"""Annotation guidelines as Markdown: their rules (headings) and the quality checks a rule cites.

A rule is a heading; a heading that names a check in backticks (`empty_output`, `instruction_too_short`)
cites it, and the editors' checks panel links that check to the rule. Anchors are made here, the same way for
the panel and the links, so a link always lands on its rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 50_000  # about 20 pages: guidelines longer than this are a manual, not a panel beside the editor
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_CITED = re.compile(r"`([a-z][a-z0-9_]*)`")


@dataclass(frozen=True)
class Rule:
    anchor: str  # the id of the rule's heading in the panel
    title: str  # the heading's text
    cites: tuple[str, ...]  # the check names it names in backticks


def anchor_of(title: str) -> str:
    """The heading's id: lowercase words joined by hyphens, prefixed so it cannot clash with the page's ids."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "guideline-" + "-".join(words or ["rule"])


def rules(text: str) -> list[Rule]:
    """The guidelines' headings in order, each with its anchor and the checks it cites."""
    found, seen = [], set()
    for match in _HEADING.finditer(text or ""):
        title = match.group(2)
        anchor = base = anchor_of(title)
        n = 2
        while anchor in seen:  # two rules with one title still get distinct anchors
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        found.append(Rule(anchor, title, tuple(_CITED.findall(title))))
    return found


def rule_for_checks(text: str) -> dict[str, Rule]:
    """Check name -> the first rule that cites it."""
    cited: dict[str, Rule] = {}
    for rule in rules(text):
        for name in rule.cites:
            cited.setdefault(name, rule)
    return cited


def problem(text: str) -> str | None:
    """Why these guidelines cannot be saved, or None."""
    if len(text or "") > MAX_CHARS:
        return f"the guidelines are {len(text):,} characters; keep them under {MAX_CHARS:,}"
    if "\x00" in (text or ""):
        return "the guidelines contain a NUL character"
    return None


def as_html(text: str) -> str:
    """The guidelines rendered for the panel: Markdown without raw HTML (what a curator types cannot run in the
    page), every heading carrying its rule's anchor, links opening in a new tab."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    tokens = md.parse(text or "")
    anchors = iter(rule.anchor for rule in rules(text or ""))
    for at, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", next(anchors, anchor_of(tokens[at + 1].content)))
        elif token.type == "inline":
            for child in token.children or []:
                if child.type == "link_open":
                    child.attrSet("target", "_blank")
                    child.attrSet("rel", "noopener noreferrer")
    return md.renderer.render(tokens, md.options, {})
