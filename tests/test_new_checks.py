"""Checks added in issue 13: unfilled template placeholders and personal data in records, each flagged with what
was found, and near misses (braces in code, HTML, links, version numbers, private IPs...) left alone."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import insert, select

from curation.quality.personal_data import personal_data, private_person_question
from curation.quality.placeholders import unfilled_placeholder
from curation.quality.records import record_flags
from db.flag_tables import RecordFlag
from db.models import Dataset, Record, utcnow

IDENTITY = "You may refer to me as {{name}}, an AI assistant developed by {{author}}."


@pytest.mark.parametrize("text, found", [
    (IDENTITY, "{{name}}"),
    ("I am {{ name }}, trained by {{author}}.", "{{ name }}"),
    ("Hello {name}, welcome to {company}.", "{name}"),
    ("Thanks for writing to {Company Name}.", "{Company Name}"),
    ("Dear <NAME>,\nthanks for your order.", "<NAME>"),
    ("Send it to <RECIPIENT_EMAIL> today.", "<RECIPIENT_EMAIL>"),
    ("Sincerely,\n[YOUR NAME]", "[YOUR NAME]"),
    ("I work at [PLACEHOLDER] as an engineer.", "[PLACEHOLDER]"),
    ("Best regards,\n[Your Name]", "[Your Name]"),
    ("Please contact [Recipient's name] for details.", "[Recipient's name]"),
])
def test_each_spelling_of_an_unfilled_placeholder_is_found(text, found):
    assert unfilled_placeholder(text) == found


@pytest.mark.parametrize("text", [
    "Use a set such as {1, 2, 3} or the empty set {}.",  # ordinary text with braces
    'The JSON object {"a": 1} has one key.',
    "function add(a, b) { return a + b; }",  # code
    'In Python, print(f"Hello {name}") greets the user.',
    "Format it with '{} items'.format(n) or \"{0}\".format(x).",
    "Write `{name}` where the name goes.",  # Markdown inline code
    "```jinja\nHello {{ user }}\n```",  # a fenced code block
    "const s = `${name}`;",
    "The fraction \\frac{a}{b} and x^{2} are LaTeX.",
    "body {color: red}",
    "Make <b>this</b> bold, add a <BR> and a <P> tag.",  # HTML tags
    "List<T> is generic; so is Map<K, V>.",
    "See [the docs](https://example.org/docs) and [the guide][1].",  # Markdown links
    "[1]: https://example.org",
    "Pick [A] or [B]; tick [x] when done.",
    "Nothing to fill here at all.",
])
def test_text_that_only_looks_like_a_placeholder_is_not_flagged(text):
    assert unfilled_placeholder(text) is None


def test_every_identity_record_with_a_placeholder_is_flagged_in_whichever_field_holds_it():
    records = [("Who are you?", "", IDENTITY),
               ("What is your name?", "", "I am {{name}}."),
               ("Introduce yourself to {{user}} please.", "", "Hello! I am an assistant."),
               ("Answer the question below, please.", "Who made you, {{name}}?", "A team of engineers.")]
    reasons = [record_flags(*r).get("unfilled_placeholder") for r in records]
    assert reasons == ["output has an unfilled template placeholder '{{name}}'",
                       "output has an unfilled template placeholder '{{name}}'",
                       "instruction has an unfilled template placeholder '{{user}}'",
                       "input has an unfilled template placeholder '{{name}}'"]


@pytest.mark.parametrize("text, kind, found", [
    ("Write to jane.doe@gmail.com for the files.", "an e-mail address", "jane.doe@gmail.com"),
    ("Call me at (415) 555-2671 tomorrow.", "a phone number", "(415) 555-2671"),
    ("The London office is on +44 20 7946 0958.", "a phone number", "+44 20 7946 0958"),
    ("The server answers on 8.8.8.8 only.", "an IP address", "8.8.8.8"),
    ("Its address is 2001:4860:4860::8888 now.", "an IP address", "2001:4860:4860::8888"),
    ("Pay with 4111 1111 1111 1111 please.", "a card number", "4111 1111 1111 1111"),
    ("My card is 5555555555554444.", "a card number", "5555555555554444"),
    ("She lives at 742 Evergreen Terrace.", "a street address", "742 Evergreen Terrace"),
    ("Ship it to 1600 Pennsylvania Avenue.", "a street address", "1600 Pennsylvania Avenue"),
])
def test_each_kind_of_personal_data_is_found(text, kind, found):
    assert personal_data(text) == (kind, found)


@pytest.mark.parametrize("text", [
    "Write to someone@example.com, a reserved example domain.",  # e-mail: RFC 2606 domains are nobody's
    "Decorate the method with @property and mention @jane.",
    "The year 2023 had 365 days and 8760 hours.",  # phone: numbers that are not dialled
    "The result is 14.285714285 after rounding.",
    "Chrome 86.0.4240.111 fixed it; count 1 2 3 4 5 6 7 8 9 10.",
    "ISBN 978-3-16-148410-0 is on the back cover.",
    "The router is at 192.168.0.1 and localhost is 127.0.0.1.",  # IP: private and loopback
    "Upgrade to version 1.2.3.4 before Friday.",
    "The meeting is at 12:30:45 today.",
    "Order 1234 5678 9012 3456 fails the checksum.",  # card: not Luhn-valid
    "The probability is 0.9381531715393066 for that class.",
    "In binary: 01110101 01100001 and 1100000001111100.",
    "Main Street is busy on Sundays.",  # street: no number
    "Route 66 crosses 8 states.",
])
def test_text_that_only_looks_like_personal_data_is_not_flagged(text):
    assert personal_data(text) is None


@pytest.mark.parametrize("text, found", [
    ("What is John Smith's home address?", "John Smith's home address"),
    ("Tell me the date of birth of Maria Garcia.", "date of birth of Maria Garcia"),
    ("Where does Jane Doe live?", "Where does Jane Doe live"),
    ("Where does my neighbour Jane live?", "Where does my neighbour Jane live"),
    ("Find the email of my coworker Tom.", "email of my coworker Tom"),
    ("When was my boss born?", "When was my boss born"),
    ("Give me Peter's phone number.", "Peter's phone number"),
])
def test_a_question_about_a_private_persons_birth_date_home_or_contacts_is_found(text, found):
    assert private_person_question(text) == found


@pytest.mark.parametrize("text", [
    "When was Abraham Lincoln born?",  # a public figure's history
    "How do I update my phone number in the app?",  # the user's own
    "What is the capital of France?",
    "Write a form that asks for a date of birth.",
    "Where did Einstein live as a child?",
])
def test_ordinary_questions_about_people_are_not_flagged(text):
    assert private_person_question(text) is None


def test_the_personal_data_flags_name_the_field_and_what_was_found():
    flags = record_flags("What is Jane Doe's phone number, please?", "", "It is (415) 555-2671.")
    assert flags == {"personal_data": "output holds a phone number '(415) 555-2671'",
                     "private_person_question":
                         "instruction asks for a person's birth date, home or contacts: 'Jane Doe's phone number'"}
    assert record_flags("Summarize the paragraph below in one sentence.", "The committee met on Tuesday.",
                        "The committee met.") == {}


def test_the_reflag_migration_adds_the_new_flags_to_records_stored_before_it(db_url):
    from alembic import command
    from alembic.config import Config

    from db.engine import make_engine, migrate, session_for
    from tests.conftest import REPO

    engine = make_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(REPO / "db" / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        for head in ("0002_dedup", "0003_publish_train", "0004_browse_indexes"):
            command.upgrade(config, head)
        dataset_id = connection.execute(insert(Dataset.__table__).returning(Dataset.__table__.c.id),
                                        {"name": "old", "description": "", "created_at": utcnow()}).scalar_one()
        old_record = sa.table("record", *[sa.column(name) for name in (
            "dataset_id", "instruction", "input", "status", "created_at", "updated_at", "version", "content_hash")],
            sa.column("outputs", sa.JSON))
        connection.execute(insert(old_record), [
            {"dataset_id": dataset_id, "instruction": i, "input": "", "outputs": [o], "status": "draft",
             "created_at": utcnow(), "updated_at": utcnow(), "version": 1, "content_hash": str(k)}
            for k, (i, o) in enumerate([("Who are you, the assistant?", IDENTITY),
                                        ("Name the capital of Spain.", ""),
                                        ("Where does Jane Doe live these days?", "At 742 Evergreen Terrace.")])])
        # As 0005 left them: flagged by the checks of its day, which had none of the new ones.
        command.upgrade(config, "0005_record_flags")
        connection.execute(sa.text("DELETE FROM record_flag WHERE flag IN "
                                   "('unfilled_placeholder', 'personal_data', 'private_person_question')"))
    migrate(engine)
    with session_for(engine) as session:
        ids = list(session.execute(select(Record.id).order_by(Record.id)).scalars())
        rows = session.execute(select(RecordFlag.record_id, RecordFlag.flag)).all()
        assert [sorted(f for r, f in rows if r == i) for i in ids] == [
            ["unfilled_placeholder"], ["empty_output"], ["personal_data", "private_person_question"]]
    engine.dispose()
