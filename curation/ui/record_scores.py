"""The record editor's Scores panel, in words: the judge's rating and reason, IFD with both perplexities, the cheap
signals, and what each selection of the dataset did with the record; the review queue's score column."""
from __future__ import annotations

import html
import re

import gradio as gr
from sqlmodel import Session

from curation.services.scores import scores_of_record
from curation.services.selections import selection_notes

NO_SCORES = "No scores yet: a curator scores the dataset in the Quality tab."
NOT_SAVED = "Scores come once the record is saved and a curator scores the dataset in the Quality tab."
LANGUAGES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
             "nl": "Dutch", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "el": "Greek",
             "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "th": "Thai", "bn": "Bengali", "ta": "Tamil",
             "und": "not recognised"}
_MARKDOWN = re.compile(r"([\\`*_\[\]#|~])")


def _quoted(text: str) -> str:
    """A model's words on one line, with nothing in them read as Markdown or HTML."""
    return _MARKDOWN.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def _language(code: str | None) -> str:
    return LANGUAGES.get(code or "und", code or "not recognised")


def short_score(name: str, value: float | None) -> str:
    """One score as the review queue shows it beside an item; empty when the item has none."""
    if value is None:
        return ""
    if name == "judge":
        return f"{value:g} / 5"
    if name == "length":
        return f"{value:,.0f} words"
    return f"{value:.2f}" if name in ("ifd", "nn_distance") else f"{value:.1f}"


def score_lines(scores: dict[str, tuple[float | None, dict | None]]) -> list[str]:
    """A Markdown line per stored score, in the order a reader weighs them."""
    lines = []
    if "judge" in scores:
        value, detail = scores["judge"]
        detail = detail or {}
        by = f" ({_quoted(detail['model'])})" if detail.get("model") else ""
        if value is None:
            lines.append(f"**Judge**{by}: no readable rating: {_quoted(detail.get('reason', ''))}")
        else:
            reason = f": “{_quoted(detail['reason'])}”" if detail.get("reason") else ""
            lines.append(f"**Judge**{by}: {value:g} of 5{reason}")
    if "ifd" in scores:
        value, detail = scores["ifd"]
        if value is None:
            lines.append("**IFD**: not measured (the output has no tokens)")
        else:
            detail = detail or {}
            # At or above 1 the output is no easier to predict with the instruction than without it.
            meaning = ": the instruction does not help predict the output" if value >= 1 else ""
            lines.append(f"**IFD**: {value:.2f} (perplexity of the output {detail.get('ppl_given_instruction', 0):.1f}"
                         f" given the instruction, {detail.get('ppl_alone', 0):.1f} alone){meaning}")
    if "ppl" in scores and scores["ppl"][0] is not None and "ifd" not in scores:
        lines.append(f"**Perplexity** of the output: {scores['ppl'][0]:.1f}")
    if "length" in scores and scores["length"][0] is not None:
        lines.append(f"**Length**: {scores['length'][0]:,.0f} words in the output")
    if "mtld" in scores and scores["mtld"][0] is not None:
        lines.append(f"**Lexical diversity (MTLD)**: {scores['mtld'][0]:.1f}")
    if "nn_distance" in scores:
        value = scores["nn_distance"][0]
        lines.append("**Nearest neighbour**: none, the only record" if value is None else
                     f"**Nearest neighbour**: cosine distance {value:.2f} (similarity {1 - value:.2f})")
    if "language" in scores:
        detail = scores["language"][1] or {}
        prompt, output = detail.get("language"), detail.get("output_language")
        lines.append(f"**Language**: {_language(prompt)}" if prompt == output else
                     f"**Language**: prompt {_language(prompt)}, output {_language(output)}")
    return lines


def scores_markdown(scores: dict[str, tuple[float | None, dict | None]], earlier: list[str],
                    notes: list[str]) -> str:
    """The panel's Markdown: the scores in words, a warning when some predate the last edit, the selection notes."""
    lines = score_lines(scores) or [NO_SCORES]
    if earlier:
        lines.append(f"*Scored before the last edit ({', '.join(earlier)}): rescore in the Quality tab.*")
    return "\n\n".join(lines + [f"- {note}" for note in notes])


def scores_panel(session: Session, record_id: int | None) -> str:
    """The open record's Scores panel (the caller has checked the viewer may open the record)."""
    if not record_id:
        return NOT_SAVED
    scores, earlier = scores_of_record(session, record_id=record_id)
    return scores_markdown(scores, earlier, selection_notes(session, record_id=record_id))


def build_scores_box() -> gr.Markdown:
    """The Scores panel in the editor's side column, filled each time a record is shown."""
    with gr.Accordion("Scores", open=True):
        return gr.Markdown(NOT_SAVED, elem_id="record-scores", elem_classes=["scores"])
