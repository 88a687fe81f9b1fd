"""Annotation guidelines: versioned Markdown per dataset, written by curators, read beside the editors, on the card."""
from __future__ import annotations

import pytest

from curation import guidelines
from curation.services import guidelines as service
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, PermissionDenied
from db.models import Role
from db.repo import ConflictError

CURATOR, ANNOTATOR = Actor("cura", Role.curator), Actor("ann", Role.annotator)
TEXT = """# Writing records

## Outputs are never empty (`empty_output`)
Write the answer in full; <script>alert(1)</script> is shown as text.

## Outputs are never empty (`empty_output`)
A second rule with the same title.

See [the SNI guide](https://example.org/guide).
"""


@pytest.fixture
def dataset(session):
    from db import repo

    repo.get_or_create_dataset(session, "demo")
    session.commit()
    return "demo"


def test_each_save_is_a_new_version_and_the_history_keeps_them_all(session, dataset):
    assert service.current_guidelines(session, dataset=dataset).version == 0
    first = service.save_guidelines(session, CURATOR, dataset=dataset, text=TEXT, expected_version=0)
    second = service.save_guidelines(session, CURATOR, dataset=dataset, text=TEXT + "\nMore.", expected_version=1,
                                     reason="an example")
    assert (first.version, second.version) == (1, 2)
    assert service.current_guidelines(session, dataset=dataset).text.endswith("More.")
    assert [v.version for v in service.guidelines_history(session, dataset=dataset)] == [2, 1]
    assert service.guidelines_version(session, dataset=dataset, version=1).text == TEXT.strip()
    # the same text again is no new version; restoring version 1 is saving its text as version 3
    assert service.save_guidelines(session, CURATOR, dataset=dataset, text=TEXT + "\nMore.",
                                   expected_version=2).version == 2
    assert service.save_guidelines(session, CURATOR, dataset=dataset, text=TEXT, expected_version=2).version == 3


def test_only_curators_write_and_a_stale_version_is_refused(session, dataset):
    with pytest.raises(PermissionDenied, match="only a curator edits the guidelines"):
        service.save_guidelines(session, ANNOTATOR, dataset=dataset, text="Mine.", expected_version=0)
    service.save_guidelines(session, Actor("root", Role.admin), dataset=dataset, text="One.", expected_version=0)
    with pytest.raises(ConflictError, match="changed by root"):
        service.save_guidelines(session, CURATOR, dataset=dataset, text="Two.", expected_version=0)
    with pytest.raises(InvalidInput, match="keep them under 50,000"):
        service.save_guidelines(session, CURATOR, dataset=dataset, text="x" * 50_001, expected_version=1)
    with pytest.raises(InvalidInput, match="'nope' does not exist"):
        service.current_guidelines(session, dataset="nope")
    assert service.current_guidelines(session, dataset=dataset).text == "One."


def test_headings_are_rules_with_distinct_anchors_and_the_checks_they_cite():
    rules = guidelines.rules(TEXT)
    assert [r.anchor for r in rules] == ["guideline-writing-records", "guideline-outputs-are-never-empty-empty-output",
                                         "guideline-outputs-are-never-empty-empty-output-2"]
    assert guidelines.rule_for_checks(TEXT)["empty_output"] == rules[1]
    page = guidelines.as_html(TEXT)
    assert f'<h2 id="{rules[1].anchor}">' in page and f'<h2 id="{rules[2].anchor}">' in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # a curator's HTML is text, never code
    assert 'target="_blank"' in page


def test_the_dataset_card_carries_the_guidelines_in_force(session, dataset):
    from curation.dataset_card import card_body
    from curation.publish import plan_publication
    from curation.records import RecordDraft
    from db import repo
    from db.models import RecordStatus

    repo.insert_records(session, repo.get_dataset(session, dataset).id, [RecordDraft("Say hi.", "", ["Hi."])],
                        by="ann", reason="test", status=RecordStatus.approved)
    session.commit()
    service.save_guidelines(session, CURATOR, dataset=dataset, text=TEXT, expected_version=0)
    body = card_body(plan_publication(session, dataset=dataset, repo_id="me/demo").facts)
    assert "## Annotation guidelines" in body and "(version 1)" in body
    assert "### Outputs are never empty (`empty_output`)" in body  # one level under the card's heading


def test_the_guidelines_command_sets_shows_and_lists_versions(sqlite_url, tmp_path, capsys):
    from curation.cli import main
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        repo.get_or_create_dataset(session, "demo")
        session.commit()
    engine.dispose()
    path = tmp_path / "rules.md"
    path.write_text(TEXT)
    assert main(["--db", sqlite_url, "guidelines", "set", "--dataset", "demo", "--file", str(path),
                 "--reason", "first"]) == 0
    assert "saved as version 1" in capsys.readouterr().out
    assert main(["--db", sqlite_url, "guidelines", "show", "--dataset", "demo"]) == 0
    assert "## Outputs are never empty" in capsys.readouterr().out
    assert main(["--db", sqlite_url, "guidelines", "history", "--dataset", "demo"]) == 0
    assert capsys.readouterr().out.startswith("v1\t")
    assert main(["--db", sqlite_url, "guidelines", "set", "--dataset", "demo", "--file", str(tmp_path / "no.md")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_failed_check_links_to_the_guideline_that_cites_it(session, dataset):
    from curation.ui.panels import checks_html

    service.save_guidelines(session, CURATOR, dataset=dataset, text=TEXT, expected_version=0)
    rules = service.cited_checks(session, dataset=dataset)
    assert rules == {"empty_output": "guideline-outputs-are-never-empty-empty-output"}
    shown = checks_html([], {"empty_output": "no output", "ends_with_colon": "ends with a colon"}, rules=rules)
    assert shown.count('class="guideline-link"') == 1
    assert 'href="#guideline-outputs-are-never-empty-empty-output"' in shown
    assert service.cited_checks(session, dataset=None) == {} == service.cited_checks(session, dataset="nope")
