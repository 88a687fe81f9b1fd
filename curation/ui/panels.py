"""The editors' side panels as display values: checks, training preview, history. User text is escaped."""
from __future__ import annotations

import html

from curation.preview import PreviewError, preview
from curation.quality.sni import Violation
from curation.records import RecordDraft
from curation.services.history import RevisionEntry
from curation.ui.safe import esc

TEMPLATES = {"Alpaca prompt": "alpaca", "Tokenizer chat template": "chat"}


def checks_html(violations: list[Violation], flags: dict[str, str], *, what: str = "record",
                rules: dict[str, str] | None = None) -> str:
    """A pass line, or one line per broken rule and quality flag; `rules` (check name -> the anchor of the
    guideline that cites it, curation.guidelines) adds a link to that guideline."""
    if not violations and not flags:
        return f'<div class="checks ok">✓ This {what} passes every check.</div>'
    rules = rules or {}

    def cited(name: str) -> str:
        anchor = rules.get(name)
        return f' <a class="guideline-link" href="#{esc(anchor)}">see the guideline</a>' if anchor else ""

    items = [f'<li><span class="rule">{esc(v.rule)}</span> {esc(v.message)}{cited(v.rule)}</li>' for v in violations]
    items += [f'<li class="flag"><span class="rule">{esc(name.replace("_", " "))}</span> {esc(reason)}{cited(name)}'
              f'</li>' for name, reason in flags.items()]
    count = len(items)
    return (f'<div class="checks bad"><div class="checks-title">{count} issue{"s" if count != 1 else ""} to look at'
            f'</div><ul>{"".join(items)}</ul></div>')


def preview_values(record: RecordDraft | None, template_label: str, tokenizer: str | None) -> tuple[str, str]:
    """(training text, token count line) for the preview panel; problems become the count line."""
    if record is None:
        return "", "Add an instance to see how training sees it."
    tokenizer = (tokenizer or "").strip() or None
    try:
        shown = preview(record, template=TEMPLATES.get(template_label, "alpaca"), tokenizer_name=tokenizer)
    except PreviewError as exc:
        return "", f"⚠ {exc}"
    if shown.tokens is None:
        return shown.text, "Choose a tokenizer to count tokens."
    return shown.text, f"**{shown.tokens:,} tokens** with `{html.escape(tokenizer)}`"


def _runs_html(runs: list[tuple[str, str]]) -> str:
    parts = []
    previous = None
    for op, text in runs:
        if op == "insert" and previous == "delete":
            parts.append(" ")  # keep "old new" apart when a word is replaced
        previous = op
        if op == "equal":
            parts.append(esc(text) if len(text) <= 120 else esc(text[:50]) + "<span class='skip'> … </span>"
                         + esc(text[-50:]))
        else:
            parts.append(f"<{'del' if op == 'delete' else 'ins'}>{esc(text)}</{'del' if op == 'delete' else 'ins'}>")
    return "".join(parts)


def history_html(entries: list[RevisionEntry]) -> str:
    """Each revision, newest first: version, who, when, why, and a word-level diff per changed field."""
    if not entries:
        return '<div class="history empty">No history yet: save to start it.</div>'
    blocks = []
    for entry in entries:
        head = (f'<div class="rev-head"><span class="rev-version">v{entry.version}</span> '
                f'<b>{esc(entry.changed_by)}</b> · {entry.changed_at:%Y-%m-%d %H:%M} UTC'
                f' · <span class="rev-reason">{esc(entry.reason)}</span></div>')
        if entry.changes:
            rows = "".join(f'<div class="rev-field"><div class="rev-label">{esc(c.label)}</div>'
                           f'<div class="rev-diff">{_runs_html(c.runs)}</div></div>' for c in entry.changes)
        else:
            rows = '<div class="rev-field quiet">no visible change</div>'
        blocks.append(f'<div class="rev">{head}{rows}</div>')
    return f'<div class="history">{"".join(blocks)}</div>'


def status_html(kind: str, item_id: int | None, status: str | None, *, version: int | None = None,
                author: str | None = None, updated_by: str | None = None, read_only: bool = False,
                note: str | None = None) -> str:
    """The line above an editor: what is open, its status badge, who wrote it, and a curator's note."""
    if not item_id:
        return f'<div class="item-line"><span class="badge new">new</span> A new {kind}: nothing saved yet.</div>'
    line = (f'<div class="item-line"><span class="badge {esc(status)}">{esc(status)}</span> '
            f'<b>{kind.capitalize()} #{item_id}</b> · version {version} · by {esc(author or "import")}'
            + (f" · last change by {esc(updated_by)}" if updated_by and updated_by != author else "")
            + (' · <span class="readonly">read-only for you</span>' if read_only else "") + "</div>")
    if note and status == "rejected":
        line += f'<div class="review-note"><b>Curator\'s note:</b> {esc(note)}</div>'
    return line
