"""Training on a selection: a published selection is stored as a publication of its one config, the tiny model
trains on that config at that commit through the real local launcher, a selection never published is refused in
words, and the Publish & train tab offers the published selections."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.hub_server import HubServer
from tests.test_publish import GOOD, LOAD_BACK, cli, seed_dataset
from tests.tiny_model import build_tiny_model
from tests.ui_server import SLOW_LOAD

pytestmark = pytest.mark.slow

FAST = {"max_steps": 2, "batch_size": 4, "gradient_accumulation": 1, "logging_steps": 1, "learning_rate": 5e-3,
        "packing": False, "max_length": 96, "gradient_checkpointing": False, "lora_dropout": 0.0}
REPO_ID = "tester/picked"


def open_session(url):
    from db.engine import open_database, session_for

    return session_for(open_database(url))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """`demo` published whole, then its selection `long` (the 12 longest instructions) published on its own;
    `short` is made and never published; one run on `long` trained to the end."""
    from sqlmodel import select

    from curation.services.permissions import Actor
    from curation.services.publishing import refresh_job, start_training
    from curation.services.selections import run_selection, selected_ids
    from db.models import Record, Role
    from db.score_tables import store_scores
    from tests.ui_server import seed

    root = tmp_path_factory.mktemp("train-on-selection")
    url = f"sqlite:///{root / 'studio.db'}"
    seed(url)  # the users of the UI tests and an empty `demo`
    seed_dataset(url)  # 20 records of `demo`: 16 approved
    with HubServer(tokens={GOOD: "tester"}) as hub:
        env = hub.client_env(token=GOOD) | {"HF_HOME": str(root / "hf")}
        done = cli(url, env, "publish", "--dataset", "demo", "--repo-id", REPO_ID)
        assert done.returncode == 0, done.stderr
        whole_commit = json.loads(done.stdout)["commit"]
        with open_session(url) as session:
            rows = session.exec(select(Record.id, Record.instruction)).all()
            store_scores(session, "length", [{"record_id": i, "value": float(len(text)), "basis": "test"}
                                             for i, text in rows])
            session.commit()
            curator = Actor("cura", Role.curator)
            for name, n in (("long", 12), ("short", 4)):
                run_selection(session, dataset="demo", name=name, weights={"length": 1}, method="top", n=n,
                              actor=curator)
            chosen = selected_ids(session, dataset="demo", name="long")
        done = cli(url, env, "select", "publish", "long", "--dataset", "demo", "--repo-id", REPO_ID)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        main_sha = hub.repo("dataset", REPO_ID).branches["main"]
        loaded = subprocess.run([sys.executable, "-c", LOAD_BACK, REPO_ID, answer["commit"], "long"], env=env,
                                capture_output=True, text=True, timeout=180)
        assert loaded.returncode == 0, loaded.stderr
        tiny = build_tiny_model(root / "tiny")
        jobs = root / "jobs"
        with open_session(url) as session:
            job = start_training(session, dataset="demo", base_model=str(tiny), launcher="local", token=GOOD,
                                 selection="long", jobs_root=str(jobs), env=env, spec_overrides=FAST)
            deadline = time.monotonic() + 240
            while (job := refresh_job(session, job.id, jobs_root=str(jobs))).status.value not in (
                    "completed", "failed", "cancelled"):
                assert time.monotonic() < deadline, job.log_tail
                time.sleep(0.5)
            session.expunge(job)
    yield {"url": url, "env": env, "root": root, "tiny": tiny, "whole_commit": whole_commit, "answer": answer,
           "main_sha": main_sha, "chosen": chosen, "loaded": json.loads(loaded.stdout)["long"], "job": job}


def test_a_published_selection_is_listed_among_the_dataset_publications(world):
    from curation.services.publishing import latest_publication, published_selections, publications
    from curation.services.selections import selected_ids

    answer = world["answer"]
    assert answer["commit"] == world["main_sha"]  # the card's commit: the newest revision of the repo
    with open_session(world["url"]) as session:
        selection, whole = publications(session, dataset="demo")
        assert (selection.id, selection.repo_id, selection.commit_id) == (answer["publication"], REPO_ID,
                                                                         answer["commit"])
        assert (selection.configs, selection.statuses, selection.created_by) == (["long"], ["approved"], None)
        approved = {record_id for record_id, _ in whole.snapshot["train"] + whole.snapshot["test"]}
        taken = [i for i in selected_ids(session, dataset="demo", name="long") if i in approved]
        went = selection.snapshot["train"] + selection.snapshot["test"]
        assert sorted(record_id for record_id, _ in went) == sorted(taken) and {v for _, v in went} == {1}
        assert selection.split_counts == {s: len(m) for s, m in selection.snapshot.items()}
        assert sum(selection.split_counts.values()) == answer["records"] == len(taken)
        # Everything published stays the whole dataset's; the selection has its own latest.
        assert latest_publication(session, dataset="demo").commit_id == world["whole_commit"]
        assert latest_publication(session, dataset="demo", selection="long").id == selection.id
        assert latest_publication(session, dataset="demo", selection="short") is None
        assert published_selections(session, dataset="demo") == ["long"]


def test_a_run_on_a_selection_trains_on_its_config_at_its_commit_and_on_its_train_split(world):
    from curation.publish import plan_publication
    from curation.services.publishing import latest_publication

    job, commit = world["job"], world["answer"]["commit"]
    assert job.status.value == "completed", job.log_tail[-3000:]
    assert (job.spec["dataset"], job.spec["dataset_config"], job.spec["dataset_revision"]) == (REPO_ID, "long",
                                                                                               commit)
    assert (job.dataset_repo, job.dataset_revision, job.publication_id) == (REPO_ID, commit,
                                                                            world["answer"]["publication"])
    assert len([m for m in job.metrics if "loss" in m]) == 2
    with open_session(world["url"]) as session:
        publication = latest_publication(session, dataset="demo", selection="long")
        plan = plan_publication(session, dataset="demo", repo_id=REPO_ID, only_ids=world["chosen"])
    # The script said it trained on as many rows as the selection's train split, and the config it loaded at that
    # commit holds exactly the rows of the selection's train records.
    assert f"on {REPO_ID}@{commit}: {publication.split_counts['train']} rows," in job.log_tail
    assert plan.snapshot == publication.snapshot
    assert world["loaded"]["train"] == plan.rows["messages"]["train"]
    assert len(world["loaded"]["train"]) == publication.split_counts["train"] < 14  # the whole train split: 14


def test_a_selection_never_published_is_refused_in_words_and_nothing_starts(world):
    from curation.services.publishing import latest_publication, start_training, training_jobs
    from curation.training.launchers import LaunchError

    with open_session(world["url"]) as session:
        before = len(training_jobs(session))
        with pytest.raises(LaunchError) as refused:
            start_training(session, dataset="demo", base_model=str(world["tiny"]), launcher="local", token=GOOD,
                           selection="short", jobs_root=str(world["root"] / "jobs"))
        assert str(refused.value) == ("selection 'short' of 'demo' has not been published yet: "
                                      "publish the selection first")
        whole = latest_publication(session, dataset="demo")
        with pytest.raises(LaunchError) as refused:
            start_training(session, dataset="demo", base_model=str(world["tiny"]), launcher="local", token=GOOD,
                           publication=whole, selection="long", jobs_root=str(world["root"] / "jobs"))
        assert str(refused.value) == (f"publication {whole.id} does not hold selection 'long': "
                                      "publish the selection first")
        assert len(training_jobs(session)) == before
    done = cli(world["url"], world["env"], "train", "--dataset", "demo", "--base-model", str(world["tiny"]),
               "--selection", "short", "--jobs-dir", str(world["root"] / "jobs"))
    assert done.returncode == 2
    assert "selection 'short' of 'demo' has not been published yet: publish the selection first" in done.stderr
    assert "Traceback" not in done.stderr


class RefusingLauncher:
    """Keeps the spec it was asked to run and starts nothing."""

    def __init__(self):
        self.specs = []

    def __call__(self, kind, **options):
        return self

    def start(self, spec, *, token=None, env=None):
        from curation.training.launchers import LaunchError

        self.specs.append(spec)
        raise LaunchError("not started in this test")


def test_a_publication_that_holds_the_selection_trains_on_its_config(world):
    from curation.services.publishing import latest_publication, start_training
    from curation.training.launchers import LaunchError

    launcher = RefusingLauncher()
    with open_session(world["url"]) as session:
        publication = latest_publication(session, dataset="demo", selection="long")
        with pytest.raises(LaunchError, match="not started in this test"):
            start_training(session, dataset="demo", base_model="tiny", launcher="local", token=None,
                           publication=publication, make_launcher=launcher)
        [spec] = launcher.specs
        assert (spec.dataset_config, spec.dataset_revision) == ("long", world["answer"]["commit"])
        with pytest.raises(LaunchError) as refused:
            start_training(session, dataset="demo", base_model="tiny", launcher="local", token=None,
                           publication=publication, make_launcher=launcher,
                           spec_overrides={"dataset_config": "messages"})
        assert str(refused.value) == f"publication {publication.id} holds only the config 'long', not 'messages'"
        # Everything published trains on the whole dataset's default format, as before.
        start = dict(dataset="demo", base_model="tiny", launcher="local", token=None, make_launcher=launcher)
        with pytest.raises(LaunchError, match="not started in this test"):
            start_training(session, **start)
        assert (launcher.specs[-1].dataset_config, launcher.specs[-1].dataset_revision) == (
            "messages", world["whole_commit"])


def test_the_tab_offers_each_published_selection_to_train_on(world):
    pytest.importorskip("gradio_client")
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from curation.ui.publish_tab import EVERYTHING
    from tests.ui_server import PASSWORDS, running_studio

    with running_studio(world["url"]) as studio:
        cura = Client(studio.url, auth=("cura", PASSWORDS["cura"]), verbose=False, httpx_kwargs=SLOW_LOAD)
        offered = cura.predict("demo", "long", api_name="/publish_train_choices")
        assert ([value for _, value in offered["choices"]], offered["value"]) == ([EVERYTHING, "long"], "long")
        offered = cura.predict("demo", "short", api_name="/publish_train_choices")  # never published
        assert ([value for _, value in offered["choices"]], offered["value"]) == ([EVERYTHING, "long"], EVERYTHING)
        with pytest.raises(AppError) as refused:
            Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD).predict(
                "demo", EVERYTHING, api_name="/publish_train_choices")
        assert str(refused.value) == "Not allowed: this needs the curator role."
        # A selection never published is refused before anything is pushed; the older calls (no "Train on")
        # still train on everything published.
        with pytest.raises(AppError) as refused:
            cura.predict("demo", ["approved"], ["messages"], REPO_ID, True, "", "tiny", "lora", "local", "a10g-small",
                         2, "", "short", api_name="/publish_and_train")
        assert str(refused.value) == ("Selection 'short' of 'demo' has not been published yet: "
                                      "publish the selection first.")
        with pytest.raises(AppError) as refused:
            cura.predict("demo", ["approved"], ["messages"], "not-a-repo", True, "", "tiny", "lora", "local",
                         "a10g-small", 2, "", api_name="/publish_and_train")
        assert str(refused.value) == "Repo id 'not-a-repo' must look like namespace/name."


def test_the_choices_list_everything_then_each_published_selection(world):
    import gradio as gr

    from curation.config import Settings
    from curation.ui.app import build_app
    from curation.ui.context import AppContext
    from curation.ui.publish_tab import EVERYTHING
    from db.engine import open_database

    engine = open_database(world["url"])
    demo = build_app(AppContext(settings=Settings.from_env(database_url=world["url"]), engine=engine))
    [choices] = [f.fn for f in demo.fns.values() if f.api_name == "publish_train_choices"]
    assert choices("demo", None, gr.Request(username="cura")) == gr.update(choices=[EVERYTHING, "long"],
                                                                            value=EVERYTHING)
    assert choices("demo", "long", gr.Request(username="root")) == gr.update(choices=[EVERYTHING, "long"],
                                                                              value="long")
    assert choices(None, "long", gr.Request(username="cura")) == gr.update(choices=[EVERYTHING], value=EVERYTHING)
    engine.dispose()
