"""Import from the Hub: a labelled dataset pushed to the loopback Hub with the real `datasets` client comes in at its
resolved commit (kept in each record's provenance), through the CLI and the Import tab; bad sources are refused in
words with nothing written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.hub_server import HubServer
from tests.ui_server import PASSWORDS, free_port, seed, SLOW_LOAD

GOOD = "hf_good_token"
ROWS = [
    {"instruction": "Name the capital of Kenya.", "input": "", "output": "Nairobi", "category": 0},
    {"instruction": "Add the numbers.", "input": "3 and 4", "output": "7", "category": 1},
    {"instruction": "", "input": "orphan", "output": "x", "category": 1},
]
LATER_ROW = {"instruction": "Name the capital of Peru.", "input": "", "output": "Lima", "category": 0}
PUSH = r"""
import json, sys
import datasets
from huggingface_hub import HfApi

rows, later = json.loads(sys.argv[1]), json.loads(sys.argv[2])
features = datasets.Features({"instruction": datasets.Value("string"), "input": datasets.Value("string"),
                              "output": datasets.Value("string"),
                              "category": datasets.ClassLabel(names=["geography", "arithmetic"])})
first = datasets.Dataset.from_list(rows, features=features).push_to_hub("tester/labelled").oid
HfApi().create_tag("tester/labelled", repo_type="dataset", tag="v1", revision=first)
main = datasets.Dataset.from_list(rows + [later], features=features).push_to_hub("tester/labelled").oid
datasets.Dataset.from_list(rows[:2], features=features).push_to_hub("tester/secret", private=True)
empty = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:1], features=features), "test": empty}).push_to_hub(
    "tester/withempty")
print(json.dumps({"v1": first, "main": main}))
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The loopback Hub holding tester/labelled (tag v1: 3 rows; main: 4), tester/secret (private, 2 rows) and
    tester/withempty (a test split with no rows), each pushed with Dataset.push_to_hub."""
    with HubServer(tokens={GOOD: "tester"}) as server:
        env = server.client_env(token=GOOD) | {"HF_HOME": str(tmp_path_factory.mktemp("hf-push"))}
        pushed = subprocess.run([sys.executable, "-c", PUSH, json.dumps(ROWS), json.dumps(LATER_ROW)], env=env,
                                capture_output=True, text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        server.commits = json.loads(pushed.stdout.strip().splitlines()[-1])
        yield server


def client_env(hub, tmp_path, token=None) -> dict:
    """A process whose Hub clients reach the loopback Hub, with no token unless given (and none stored)."""
    return hub.client_env(token=token) | {"HF_HOME": str(tmp_path / "hf")}


def cli(url: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation", "--db", url, "import", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def stored(url: str, dataset: str) -> list[tuple]:
    """(instruction, category, source_file, provenance) of the dataset's records in id order."""
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(url)
    with session_for(engine) as session:
        found = repo.get_dataset(session, dataset)
        rows = [] if found is None else [(r.instruction, r.category, r.source_file, r.origin, r.provenance)
                                         for r in repo.iter_records(session, found.id)]
    engine.dispose()
    return rows


def counts(url: str) -> dict:
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(url)
    with session_for(engine) as session:
        found = repo.table_counts(session)
    engine.dispose()
    return found


def source(revision: str, row: int) -> dict:
    return {"source": {"hub": "tester/labelled", "revision": revision, "config": None, "split": "train", "row": row}}


def test_a_hub_source_is_owner_name_with_an_optional_revision():
    from curation.hub_import import HubImportError, HubSource, parse_source

    assert parse_source("hub:tester/labelled") == HubSource("tester/labelled", None, None, "train")
    assert parse_source("hub:tester/labelled@v1", config="en", split="test") == HubSource(
        "tester/labelled", "v1", "en", "test")
    for bad, message in (("hub:labelled", "'hub:labelled' is not a Hub dataset: write hub:OWNER/NAME or "
                                          "hub:OWNER/NAME@REVISION"),
                         ("hub:tester/labelled@", "'hub:tester/labelled@' names no revision after '@'")):
        with pytest.raises(HubImportError) as refused:
            parse_source(bad)
        assert str(refused.value) == message


def test_the_cli_imports_a_split_at_a_tag_and_each_record_keeps_the_resolved_commit(hub, sqlite_url, tmp_path):
    env = client_env(hub, tmp_path)
    v1, main = hub.commits["v1"], hub.commits["main"]
    done = cli(sqlite_url, env, "hub:tester/labelled@v1", "--split", "train", "--dataset", "hubbed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"hub:tester/labelled@{v1}: hub:alpaca, 3 rows read, 2 imported, 0 duplicates skipped, 1 rejected",
        "dataset 'hubbed': 2 records imported, 0 duplicates skipped, 1 rows rejected"]
    assert "  rejected row 2: empty instruction" in done.stderr.splitlines()
    assert stored(sqlite_url, "hubbed") == [
        ("Name the capital of Kenya.", "geography", "hub:tester/labelled", "imported", source(v1, 0)),
        ("Add the numbers.", "arithmetic", "hub:tester/labelled", "imported", source(v1, 1))]

    # The same commit again gives the same rows: all skipped as duplicates. The branch has moved on since.
    again = cli(sqlite_url, env, f"hub:tester/labelled@{v1}", "--dataset", "hubbed")
    assert again.stdout.splitlines()[-1] == ("dataset 'hubbed': 0 records imported, 2 duplicates skipped, "
                                             "1 rows rejected")
    latest = cli(sqlite_url, env, "hub:tester/labelled", "--dataset", "hubbed")
    assert latest.stdout.splitlines()[0].startswith(f"hub:tester/labelled@{main}: hub:alpaca, 4 rows read, 1 imported")
    assert stored(sqlite_url, "hubbed")[-1] == ("Name the capital of Peru.", "geography", "hub:tester/labelled",
                                                "imported", source(main, 3))


def test_a_private_repo_takes_the_token_as_publishing_does(hub, sqlite_url, tmp_path):
    done = cli(sqlite_url, client_env(hub, tmp_path, token=GOOD), "hub:tester/secret", "--dataset", "secret")
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in stored(sqlite_url, "secret")] == ["Name the capital of Kenya.", "Add the numbers."]


@pytest.fixture(scope="module")
def kept_database(hub, tmp_path_factory) -> Path:
    """A database holding dataset "kept" (tester/labelled@v1, imported by the command line), copied by each case
    below rather than imported again (one command-line process fewer per case)."""
    folder = tmp_path_factory.mktemp("kept")
    done = cli(f"sqlite:///{folder / 'studio.db'}", client_env(hub, folder), "hub:tester/labelled@v1", "--dataset", "kept")
    assert done.returncode == 0, done.stderr
    return folder / "studio.db"


@pytest.mark.parametrize("args, token, message", [
    (["hub:tester/nope"], GOOD, "dataset tester/nope was not found on the Hub (or the token may not read it)"),
    (["hub:tester/labelled@v9"], None, "dataset tester/labelled has no revision 'v9' (branches: main; tags: v1)"),
    (["hub:tester/secret"], None, "dataset tester/secret was not found on the Hub: it does not exist, or it is "
                                  "private and no token was given (set HF_TOKEN, or type a token)"),
    (["hub:tester/withempty", "--split", "test"], None, "hub:tester/withempty has no rows in split 'test'"),
    (["hub:tester/labelled", "--split", "nope"], None, "tester/labelled: Bad split: nope. Available splits: ['train']"),
    (["hub:tester/labelled", "--format", "csv"], None, "a Hub dataset is read as rows: choose the format auto or one "
                                                      "of alpaca, dolly, self-instruct, sharegpt, messages, "
                                                      "prompt-completion, not 'csv'"),
])
def test_a_bad_hub_source_exits_2_in_words_and_writes_nothing(hub, kept_database, sqlite_url, tmp_path, args, token,
                                                              message):
    env = client_env(hub, tmp_path, token=token)
    shutil.copy(kept_database, sqlite_url.removeprefix("sqlite:///"))
    before = counts(sqlite_url)
    assert any(before.values())  # the kept dataset is there
    # With a good file after it: the whole command is refused.
    refused = cli(sqlite_url, env, args[0], str(REPO / "tests" / "fixtures" / "dolly_small.jsonl"), *args[1:],
                  "--dataset", "kept")
    assert (refused.returncode, refused.stderr) == (2, f"error: {message}\n")
    assert counts(sqlite_url) == before


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the app exited: {process.stdout.read()}"
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the app did not start serving")


def test_the_import_tab_imports_a_private_hub_dataset_with_a_typed_token(hub, tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    database = f"sqlite:///{tmp_path / 'studio.db'}"
    seed(database)
    port = free_port()
    env = client_env(hub, tmp_path) | {"DATABASE_URL": database, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process)
        curator = Client(url, auth=("cura", PASSWORDS["cura"]), verbose=False, httpx_kwargs=SLOW_LOAD)
        form = ["tester/secret", "", "train", "", GOOD, "hubbed", "auto", False, False, "", "", "", "", ""]
        report, *_ = curator.predict(*form, api_name="/import_hub")
        assert "Imported 2 records into hubbed</b> (a new dataset): 0 duplicates skipped, 0 rows rejected." in report
        assert f"hub:tester/secret@{hub.repo('dataset', 'tester/secret').branches['main']}" in report
        with pytest.raises(AppError) as refused:
            curator.predict(*form[:4], "", *form[5:], api_name="/import_hub")
        assert str(refused.value) == ("Nothing was imported: dataset tester/secret was not found on the Hub: it does "
                                      "not exist, or it is private and no token was given (set HF_TOKEN, or type "
                                      "a token).")
        with pytest.raises(AppError) as refused:
            curator.predict("tester/labelled", "", "train", "v9", *form[4:], api_name="/import_hub")
        assert str(refused.value) == ("Nothing was imported: dataset tester/labelled has no revision 'v9' "
                                      "(branches: main; tags: v1).")
    finally:
        process.terminate()
        process.wait(30)
    assert [r[4]["source"]["hub"] for r in stored(database, "hubbed")] == ["tester/secret", "tester/secret"]
