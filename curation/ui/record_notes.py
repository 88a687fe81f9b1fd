"""Beside the record editor: the record's tags (curators put them on and take them off) and its comments,
threaded (whoever can see the record reads them and writes one or a reply)."""
from __future__ import annotations

import html

import gradio as gr

from curation.services import comments as comments_service
from curation.services import tags as tags_service
from curation.services.annotation import InvalidInput
from curation.ui.context import AppContext

CSS = """
.comments { font-size: .9rem; max-height: 360px; overflow-y: auto; }
.comment { border-left: 3px solid var(--border-color-primary); padding: 2px 8px; margin: 4px 0; }
.comment .who { font-size: .8rem; opacity: .75; }
.comment p { margin: 2px 0; white-space: pre-wrap; }
.tag-chip { display: inline-block; background: #e0e7ff; color: #3730a3; border-radius: 10px; padding: 0 8px;
            margin: 0 4px 4px 0; font-size: .8rem; }
"""


def tags_html(tags: list[str]) -> str:
    if not tags:
        return '<div class="hint">No tags.</div>'
    return "".join(f'<span class="tag-chip">{html.escape(t)}</span>' for t in tags)


def comments_html(comments: list[comments_service.CommentView] | None) -> str:
    if comments is None:
        return '<div class="comments hint">Open a saved record to read and write its comments.</div>'
    if not comments:
        return '<div class="comments hint">No comments yet.</div>'
    shown = []
    for c in comments:
        indent = min(c.depth, 6) * 18
        shown.append(f'<div class="comment" style="margin-left:{indent}px" id="comment-{c.id}">'
                     f'<div class="who">#{c.id} · {html.escape(c.author or "?")} · {c.written_at:%Y-%m-%d %H:%M}'
                     f'{" · reply" if c.parent_id else ""}</div><p>{html.escape(c.text)}</p></div>')
    return f'<div class="comments">{"".join(shown)}</div>'


def reply_choices(comments: list[comments_service.CommentView]) -> list[tuple[str, str]]:
    def short(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= 40 else text[:39] + "…"
    return [("a new thread", "")] + [(f"#{c.id} {c.author or '?'}: {short(c.text)}", str(c.id)) for c in comments]


def attach_record_notes(ctx: AppContext, *, record_id) -> None:
    """A "Comments and tags" accordion (placed here) that follows the editor's `record_id`."""
    with gr.Accordion("Comments and tags", open=True, elem_id="record-notes"):
        tags_box = gr.HTML(tags_html([]), elem_id="record-tags", css_template=CSS)
        with gr.Row(equal_height=True, visible=False, elem_id="record-tag-row") as tag_row:
            tag = gr.Textbox(show_label=False, placeholder="a tag", scale=3, elem_id="record-tag")
            tag_add = gr.Button("Add tag", size="sm", scale=1, elem_id="record-tag-add")
            tag_remove = gr.Button("Remove", size="sm", scale=1, elem_id="record-tag-remove")
        thread = gr.HTML(comments_html(None), elem_id="record-comments", css_template=CSS)
        reply_to = gr.Dropdown(label="Reply to", choices=[("a new thread", "")], value="", elem_id="record-reply-to")
        comment = gr.Textbox(label="Comment", lines=2, placeholder="a question or a note for whoever works on it",
                             elem_id="record-comment")
        send = gr.Button("Send", size="sm", elem_id="record-comment-send")

    def need_record(record_v) -> int:
        if record_v in (None, "", 0):
            raise InvalidInput("save the record first: comments and tags belong to a saved record")
        return int(record_v)

    @ctx.friendly
    def record_notes(record_v, request: gr.Request):
        """The open record's tags and comments (threads, replies under what they answer)."""
        actor = ctx.actor(request)
        if record_v in (None, "", 0):
            return tags_html([]), comments_html(None), gr.update(choices=[("a new thread", "")], value=""), \
                gr.update(visible=False)
        with ctx.session() as session:
            tags = tags_service.record_tags(session, actor, int(record_v))
            threads = comments_service.record_comments(session, actor, int(record_v))
        return tags_html(tags), comments_html(threads), gr.update(choices=reply_choices(threads), value=""), \
            gr.update(visible=actor.reviews)

    @ctx.friendly
    def record_comment(record_v, text, reply_v, request: gr.Request):
        """Write a comment on the record, or a reply to one of its comments."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            comments_service.add_comment(session, actor, need_record(record_v), text, reply_to=int(reply_v or 0) or None)
            session.commit()
            threads = comments_service.record_comments(session, actor, int(record_v))
        return comments_html(threads), gr.update(choices=reply_choices(threads), value=""), ""

    def tagging(add: bool):
        @ctx.friendly
        def record_tag(record_v, tag_v, request: gr.Request):
            actor = ctx.actor(request)
            with ctx.session() as session:
                change = tags_service.add_tag if add else tags_service.remove_tag
                tags = change(session, actor, need_record(record_v), tag_v)
                session.commit()
            return tags_html(tags), ""
        return record_tag

    private = dict(api_visibility="private", show_progress="hidden")
    record_id.change(record_notes, [record_id], [tags_box, thread, reply_to, tag_row], **private)
    send.click(record_comment, [record_id, comment, reply_to], [thread, reply_to, comment], api_name="record_comment",
               show_progress="hidden")
    tag_add.click(tagging(True), [record_id, tag], [tags_box, tag], api_name="record_tag_add", show_progress="hidden")
    tag_remove.click(tagging(False), [record_id, tag], [tags_box, tag], **private)
