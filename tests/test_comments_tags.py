"""Comments on a record, threaded, and tags on one record (issue 16), on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from curation.records import RecordDraft
from curation.services import comments, tags
from curation.services.browse import BrowseQuery, browse, tags_in_use
from curation.services.errors import InvalidInput, NotFoundError, PermissionDenied
from curation.services.permissions import Actor
from db import repo
from db.models import Role

CURA = Actor("cura", Role.curator)
ANN = Actor("ann", Role.annotator)
BEN = Actor("ben", Role.annotator)


@pytest.fixture
def records(session):
    dataset = repo.get_or_create_dataset(session, "demo")
    ids = repo.insert_records(session, dataset.id, [RecordDraft(instruction=f"Name capital {i}.", outputs=["Paris"])
                                                    for i in range(3)], by="ann", reason="created")
    session.commit()
    return ids


def test_comments_come_as_threads_each_reply_under_what_it_answers(session, records):
    record = records[0]
    question = comments.add_comment(session, ANN, record, "Is *Paris* right here?")
    other = comments.add_comment(session, BEN, record, "The input is missing.")
    answer = comments.add_comment(session, CURA, record, "Yes, it is.", reply_to=question.id)
    thanks = comments.add_comment(session, ANN, record, "Thanks!", reply_to=answer.id)
    second = comments.add_comment(session, BEN, record, "Agreed.", reply_to=question.id)
    comments.add_comment(session, CURA, records[1], "Another record's comment.")
    session.commit()
    thread = comments.record_comments(session, BEN, record)
    assert [(c.id, c.author, c.text, c.depth) for c in thread] == [
        (question.id, "ann", "Is *Paris* right here?", 0), (answer.id, "cura", "Yes, it is.", 1),
        (thanks.id, "ann", "Thanks!", 2), (second.id, "ben", "Agreed.", 1), (other.id, "ben", "The input is missing.", 0)]
    assert thanks.depth == 2 and thread[0].written_at is not None


def test_a_comment_must_say_something_and_answer_a_comment_on_the_same_record(session, records):
    with pytest.raises(InvalidInput, match="write the comment first"):
        comments.add_comment(session, ANN, records[0], "   ")
    elsewhere = comments.add_comment(session, ANN, records[1], "Here.")
    with pytest.raises(InvalidInput, match=f"comment #{elsewhere.id} is not a comment on record #{records[0]}"):
        comments.add_comment(session, ANN, records[0], "A reply.", reply_to=elsewhere.id)
    with pytest.raises(NotFoundError):
        comments.add_comment(session, ANN, 999_999, "Nobody reads this.")
    with pytest.raises(PermissionDenied, match="sign in first"):
        comments.record_comments(session, None, records[0])


def test_a_curator_tags_one_record_and_browse_shows_and_filters_by_it(session, records):
    assert tags.add_tag(session, CURA, records[1], "  needs  source ") == ["needs source"]
    assert tags.add_tag(session, CURA, records[1], "math") == ["math", "needs source"]
    assert tags.add_tag(session, CURA, records[2], "math") == ["math"]
    session.commit()
    page = browse(session, BrowseQuery(dataset="demo", sort="Oldest"))
    assert [row[-2] for row in page.rows] == ["", "math, needs source", "math"]
    assert [row[0] for row in browse(session, BrowseQuery(tag="math", sort="Oldest")).rows] == records[1:]
    assert tags_in_use(session, "demo") == ["math", "needs source"]
    assert tags.remove_tag(session, CURA, records[1], "math") == ["needs source"]
    with pytest.raises(InvalidInput, match=f"record #{records[0]} has no tag 'math'"):
        tags.remove_tag(session, CURA, records[0], "math")
    assert tags.record_tags(session, ANN, records[1]) == ["needs source"]


def test_tags_are_short_words_written_by_curators(session, records):
    with pytest.raises(PermissionDenied, match="only a curator can tag records"):
        tags.add_tag(session, ANN, records[0], "mine")
    with pytest.raises(InvalidInput, match="a tag cannot hold a comma"):
        tags.add_tag(session, CURA, records[0], "a, b")
    with pytest.raises(InvalidInput, match="write the tag"):
        tags.add_tag(session, CURA, records[0], " ")
    with pytest.raises(InvalidInput, match="a tag is at most 100 characters; this one is 101"):
        tags.add_tag(session, CURA, records[0], "x" * 101)
    assert tags.record_tags(session, CURA, records[0]) == []
