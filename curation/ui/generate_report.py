"""What the Generate tab shows of a job: its line, a progress bar, the drop report, the preview and the jobs table.

Every string a model or a person wrote is escaped: a generated instruction is shown as text, never as HTML.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from curation.services.generation import PIPELINES, RULE_WORDS, job_state
from curation.ui.safe import esc

JOB_COLUMNS = ["ID", "Pipeline", "Dataset", "State", "Kept / target", "By", "When"]
SHOWN_EXAMPLES = 3
# Inline styles: the bar and the cards need no rules in the app's stylesheet.
_BAR = ("height:14px;border-radius:7px;background:var(--neutral-200,#e2e8f0);overflow:hidden;margin:4px 0")
_FILL = "height:100%;background:var(--color-accent,#6366f1);transition:width .4s"
_CARD = "border:1px solid var(--border-color-primary,#e2e8f0);border-radius:8px;padding:8px 10px;margin:6px 0"
_QUIET = "color:var(--body-text-color-subdued,#64748b);font-size:.9em"


def progress_html(kept: int, target: int, state: str = "") -> str:
    """A bar of kept against target, readable by a screen reader (role progressbar) and by a browser test."""
    target = max(int(target or 0), 0)
    kept = max(int(kept or 0), 0)
    share = min(kept / target, 1.0) if target else 0.0
    label = f"kept {kept:,} of {target:,}" + (f" · {state}" if state else "") if target else "no job running"
    return (f'<div class="gen-progress" role="progressbar" aria-valuemin="0" aria-valuemax="{target}" '
            f'aria-valuenow="{kept}" aria-label="records kept" data-state="{esc(state)}">'
            f'<div style="{_BAR}"><div style="{_FILL};width:{share * 100:.1f}%"></div></div>'
            f'<div style="{_QUIET}">{esc(label)}</div></div>')


def job_line(job) -> str:
    """One Markdown line: which job, into which dataset, where it stands, and its last word."""
    if job is None:
        return "No generation job yet."
    dataset = (job.spec or {}).get("dataset", "")
    # A job that stopped says how many it kept in its message ("kept 8 of 30: cancelled (...)").
    ending = esc(job.message) if (job.message or "").startswith("kept ") else (
        f"kept {job.kept:,} of {job.target:,}" + (f" · {esc(job.message)}" if job.message else ""))
    return (f"**Job {job.id}** · {PIPELINES.get(job.pipeline, esc(job.pipeline))} into {esc(dataset)} · "
            f"**{job_state(job)}** · {ending}")


def report_html(job) -> str:
    """The report of a job that has run: records asked for, kept, dropped by each rule with examples, tokens."""
    if job is None:
        return ""
    report = job.report or {}
    if not report:
        return f'<div class="gen-report" style="{_QUIET}">The report appears when the job stops.</div>'
    drops = report.get("drops") or {}
    dropped = sum(drops.values())
    head = (f'<div class="gen-report-counts"><b>{job.target:,}</b> asked for · <b>{report.get("kept", job.kept):,}'
            f'</b> kept ({report.get("written", 0):,} written by this run) · <b>{dropped:,}</b> dropped</div>'
            f'<div class="gen-report-usage" style="{_QUIET}">{report.get("requested", 0):,} requests sent, '
            f'{report.get("cached", 0):,} answered from the cache, {report.get("failed", 0):,} failed · tokens: '
            f'{report.get("prompt_tokens", 0):,} prompt + {report.get("completion_tokens", 0):,} completion</div>')
    rules = []
    for rule, count in sorted(drops.items(), key=lambda item: (-item[1], item[0])):
        examples = (report.get("examples") or {}).get(rule, [])[:SHOWN_EXAMPLES]
        items = "".join(f'<li><span class="gen-drop-text">“{esc(_short(e.get("text")))}”</span> '
                        f'<span style="{_QUIET}">— {esc(e.get("reason", ""))}</span></li>' for e in examples)
        rules.append(f'<div class="gen-drop" data-rule="{esc(rule)}" style="{_CARD}"><b>{count:,}</b> dropped: '
                     f'{esc(RULE_WORDS.get(rule, rule))} <code>{esc(rule)}</code><ul>{items}</ul></div>')
    body = "".join(rules) or f'<div style="{_QUIET}">Nothing was dropped.</div>'
    return f'<div class="gen-report">{head}{body}</div>'


def preview_html(candidates: list, report) -> str:
    """The records a run would keep first, as cards, and what the preview dropped on the way."""
    if not candidates:
        cards = f'<div style="{_QUIET}">The preview kept nothing: see what it dropped below.</div>'
    else:
        cards = "".join(_candidate_card(n, c) for n, c in enumerate(candidates, 1))
    drops = ", ".join(f"{count} {RULE_WORDS.get(rule, rule)}" for rule, count in
                      sorted(report.drops.items(), key=lambda item: -item[1]))
    usage = (f"{report.requested:,} requests sent, {report.cached:,} from the cache · "
             f"{report.prompt_tokens:,} prompt + {report.completion_tokens:,} completion tokens")
    return (f'<div class="gen-preview"><div><b>{len(candidates)}</b> records previewed; nothing was written. '
            f'<span style="{_QUIET}">{esc(usage)}</span></div>{cards}'
            f'<div style="{_QUIET}">Dropped on the way: {esc(drops) if drops else "none"}</div></div>')


def _candidate_card(n: int, candidate) -> str:
    parts = [f'<div><b>{n}.</b> {esc(candidate.instruction)}</div>']
    if candidate.input:
        parts.append(f'<div style="{_QUIET}">Input</div><div>{esc(candidate.input)}</div>')
    if candidate.output:
        parts.append(f'<div style="{_QUIET}">Output</div><div>{esc(candidate.output)}</div>')
    origin = (f"from seeds {', '.join(candidate.seeds)}" if candidate.seeds else
              f"evolved from #{candidate.parent_id} ({candidate.operation})" if candidate.parent_id else "")
    if origin:
        parts.append(f'<div style="{_QUIET}">{esc(origin)}</div>')
    return f'<div class="gen-candidate" style="{_CARD}">{"".join(parts)}</div>'


def jobs_frame(jobs: list) -> pd.DataFrame:
    rows = [[j.id, PIPELINES.get(j.pipeline, j.pipeline), (j.spec or {}).get("dataset", ""), job_state(j),
             f"{j.kept:,} / {j.target:,}", j.created_by or "", j.created_at.strftime("%Y-%m-%d %H:%M")] for j in jobs]
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def _short(text: Any, width: int = 160) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[:width - 1] + "…"
