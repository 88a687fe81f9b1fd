"""The buttons the record and task editors share: New / Save / Submit, and the curators' review box."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class EditorActions:
    new: gr.Button
    save: gr.Button
    submit: gr.Button
    review_box: gr.Group
    reason: gr.Textbox
    approve: gr.Button
    reject: gr.Button
    discard: gr.Button


def editor_actions(kind: str) -> EditorActions:
    """Build them where called; element ids are `{kind}-save`, `{kind}-reason`, `{kind}-approve`, ..."""
    with gr.Row(elem_classes=["actions"]):
        new = gr.Button(f"New {kind}", variant="secondary")
        save = gr.Button("Save · Ctrl+S", variant="primary", elem_classes=["shortcut-save"], elem_id=f"{kind}-save")
        submit = gr.Button("Submit · Ctrl+Enter", elem_classes=["shortcut-submit"], elem_id=f"{kind}-submit")
    with gr.Group(visible=False, elem_classes=["review-box"]) as review_box:
        gr.Markdown("**Review** · curators", elem_classes=["review-box-title"])
        reason = gr.Textbox(label="Review note", placeholder="Why it is rejected (the annotator sees this)",
                            elem_id=f"{kind}-reason")
        with gr.Row():
            approve = gr.Button("Approve", variant="primary", elem_id=f"{kind}-approve")
            reject = gr.Button("Reject with note", variant="stop", elem_id=f"{kind}-reject")
            discard = gr.Button("Discard", variant="secondary", elem_id=f"{kind}-discard")
    return EditorActions(new, save, submit, review_box, reason, approve, reject, discard)
