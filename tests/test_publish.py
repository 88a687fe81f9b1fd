"""Publishing: the chosen records reach the (loopback) Hub through the real clients and load back equal."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.hub_server import HubServer

GOOD, BAD = "hf_good_token", "hf_wrong_token"
LOAD_BACK = r"""
import json, sys, datasets
repo, revision, configs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
out = {}
for config in configs:
    parts = datasets.load_dataset(repo, config, revision=revision)
    out[config] = {split: parts[split].to_list() for split in parts}
print(json.dumps(out))
"""


def seed_dataset(url: str, name: str = "demo") -> None:
    """20 records in two categories: 16 approved by two annotators, 2 drafts, 2 discarded."""
    from db import repo
    from db.engine import open_database, session_for
    from db.models import RecordStatus
    from curation.records import RecordDraft

    engine = open_database(url)
    with session_for(engine) as session:
        dataset = repo.get_or_create_dataset(session, name, license="cc-by-4.0", language="en")
        drafts = [RecordDraft(instruction=f"Name fruit number {i}.", outputs=[f"Fruit {i} is a pear."],
                              category="qa" if i % 2 else "brainstorm", input="" if i % 3 else f"context {i}")
                  for i in range(20)]
        for who, chunk in (("ana", drafts[:10]), ("ben", drafts[10:])):
            repo.insert_records(session, dataset.id, chunk[:8], by=who, reason="test", status=RecordStatus.approved)
            repo.insert_records(session, dataset.id, chunk[8:9], by=who, reason="test", status=RecordStatus.draft)
            repo.insert_records(session, dataset.id, chunk[9:], by=who, reason="test", status=RecordStatus.discarded)
        session.commit()
    engine.dispose()


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={GOOD: "tester"}) as server:
        yield server


def cli(url: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation", "--db", url, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def publications(url: str):
    from db.engine import open_database, session_for
    from curation.services.publishing import publications as listed

    engine = open_database(url)
    with session_for(engine) as session:
        found = listed(session)
    engine.dispose()
    return found


def test_split_keeps_near_duplicate_groups_together_and_stratifies_by_category():
    from curation.publish import split_records

    records = [(i, "qa" if i < 10 else "chat") for i in range(20)]
    side = split_records(records, [[0, 1, 2], [10, 11]], test_fraction=0.2, seed=3)
    assert len({side[0], side[1], side[2]}) == 1 and side[10] == side[11]
    assert sum(side[i] == "test" for i in range(10)) == 2
    assert sum(side[i] == "test" for i in range(10, 20)) == 2
    assert split_records(records, [], test_fraction=0.2, seed=3) == split_records(records, [], test_fraction=0.2, seed=3)


def test_publish_then_load_back_equal_with_card_and_recorded_revision(hub, sqlite_url, tmp_path):
    from curation.publish import plan_publication
    from db.engine import open_database, session_for

    seed_dataset(sqlite_url)
    env = hub.client_env(token=GOOD) | {"HF_HOME": str(tmp_path / "hf")}
    done = cli(sqlite_url, env, "publish", "--dataset", "demo", "--repo-id", "tester/demo", "--private",
               "--config", "messages", "alpaca", "prompt_completion")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    remote = hub.repo("dataset", "tester/demo")
    assert remote.private and answer["commit"] == remote.branches["main"]
    assert answer["splits"] == {"train": 14, "test": 2}

    [publication] = publications(sqlite_url)
    assert publication.commit_id == answer["commit"] and publication.repo_id == "tester/demo"
    assert sorted(v for _, v in publication.snapshot["train"] + publication.snapshot["test"]) == [1] * 16

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        plan = plan_publication(session, dataset="demo", repo_id="tester/demo",
                                configs=["messages", "alpaca", "prompt_completion"])
    engine.dispose()
    loaded = subprocess.run([sys.executable, "-c", LOAD_BACK, "tester/demo", answer["commit"],
                             "messages,alpaca,prompt_completion"], env=env, capture_output=True, text=True,
                            timeout=180)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == plan.rows

    readme = remote.resolve(answer["commit"]).files["README.md"].data.decode()
    header = yaml.safe_load(readme.split("---")[1])
    assert header["license"] == "cc-by-4.0" and header["language"] == ["en"]
    assert header["task_categories"] == ["text-generation"] and header["size_categories"] == ["n<1K"]
    assert header["tags"] == ["instruction-tuning", "sft"]
    assert [c["config_name"] for c in header["configs"]] == ["messages", "alpaca", "prompt_completion"]
    assert header["configs"][0]["default"] is True
    body = readme.split("---", 2)[2]
    assert "| brainstorm | 8 |" in body and "| qa | 8 |" in body and "| approved | 16 |" in body
    assert "Annotators: 2." in body and 'load_dataset("tester/demo", "messages")' in body
    assert "no near-duplicate search was run" in body and "Length in tokens" in body and "p50" in body


@pytest.mark.parametrize("failure", ["bad token", "server 500"])
def test_failed_push_says_so_and_records_nothing(hub, sqlite_url, tmp_path, failure):
    seed_dataset(sqlite_url)
    env = hub.client_env(token=BAD if failure == "bad token" else GOOD) | {"HF_HOME": str(tmp_path / "hf")}
    if failure == "server 500":
        hub.fail("POST", r"/api/datasets/tester/broken/commit/")
    try:
        done = cli(sqlite_url, env, "publish", "--dataset", "demo", "--repo-id", "tester/broken")
    finally:
        hub.clear_failures()
    assert done.returncode == 2
    message = done.stderr.strip().splitlines()[-1]
    expected = ("the Hub refused the token (401 Unauthorized)" if failure == "bad token"
                else "the Hub answered 500 (server error)")
    assert message.startswith("error: publishing to tester/broken failed: ") and expected in message
    assert message.endswith("nothing was recorded as published")
    assert BAD not in done.stderr + done.stdout and GOOD not in done.stderr + done.stdout
    assert publications(sqlite_url) == []


def seed_mixed_authorship(url: str) -> None:
    """Published (approved or submitted): 3 by people, 2 imported, 1 from a template, 2 machine-drafted and edited,
    2 approved as drafted, 1 unreviewed; and a discarded machine draft that is never published."""
    from curation.provenance import MachineText
    from curation.records import RecordDraft
    from db import repo
    from db.engine import open_database, session_for
    from db.models import RecordStatus

    def drafted(model: str, state: str) -> dict:
        entry = MachineText(text="Pears.", backend="openai", base_url="http://gpu-box:8000/v1", model=model).entry()
        return {"outputs": [{**entry, "state": state}]}

    engine = open_database(url)
    with session_for(engine) as session:
        dataset = repo.get_or_create_dataset(session, "mixed", license="cc-by-4.0", language="en")
        made = iter(range(100))

        def add(count, origin="human", provenance=None, status=RecordStatus.approved):
            drafts = [RecordDraft(instruction=f"Name fruit number {next(made)}.", outputs=["Pears."])
                      for _ in range(count)]
            repo.insert_records(session, dataset.id, drafts, by="ana" if origin == "human" else None, reason="test",
                                status=status, origin=origin, provenances=[provenance] * count)

        add(3)
        add(2, "imported")
        add(1, "template")
        add(2, provenance=drafted("m-large", "edited"))
        add(2, "imported", provenance=drafted("m-small", "approved"))
        add(1, provenance=drafted("m-small", "unreviewed"), status=RecordStatus.submitted)
        add(1, provenance=drafted("m-other", "unreviewed"), status=RecordStatus.discarded)
        session.commit()
    engine.dispose()


def test_the_card_states_who_wrote_the_published_records_and_which_models(hub, sqlite_url, tmp_path):
    seed_mixed_authorship(sqlite_url)
    env = hub.client_env(token=GOOD) | {"HF_HOME": str(tmp_path / "hf")}
    done = cli(sqlite_url, env, "publish", "--dataset", "mixed", "--repo-id", "tester/mixed",
               "--status", "approved", "submitted")
    assert done.returncode == 0, done.stderr
    commit = json.loads(done.stdout)["commit"]
    body = hub.repo("dataset", "tester/mixed").resolve(commit).files["README.md"].data.decode().split("---", 2)[2]
    section = body.split("## Who wrote it\n\n", 1)[1].split("\n\n## ", 1)[0]
    assert section == (
        "| Written by | Records |\n|---|---|\n"
        "| People in the studio | 3 |\n| Imported | 2 |\n| Made by templates | 1 |\n"
        "| Machine-drafted, edited by a person | 2 |\n| Machine-drafted, approved unedited | 2 |\n"
        "| Machine-drafted, unreviewed | 1 |\n\n"
        "Models that drafted text: `openai:m-small` (3 records), `openai:m-large` (2 records). A machine-drafted "
        "record keeps, per field, the model, its parameters, the prompt and whether a person edited or approved "
        "the text.")
    assert "m-other" not in body  # only in a discarded record


def test_a_card_without_machine_text_says_so():
    from curation.dataset_card import CardFacts, card_body

    facts = CardFacts(dataset="d", repo_id="t/d", description="", license=None, language=None, configs=["messages"],
                      default_config="messages", split_counts={"train": 2}, by_category={}, by_status={},
                      token_lengths={}, tokenizer="t", near_duplicates="none", quality_flags={}, annotators=1,
                      statuses=["approved"], written_by={"people": 2, "imported": 0, "template": 0, "edited": 0,
                                                         "approved": 0, "unreviewed": 0, "generated": 0})
    body = card_body(facts)
    assert "| People in the studio | 2 |\n| Imported | 0 |" in body and "Generated by a model" not in body
    assert "No text in it was drafted by a model." in body
