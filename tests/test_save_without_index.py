"""A save never waits for the near-duplicate index: its checks come first, and without an index it just saves."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.ui_server import PASSWORDS, running_studio, seed, SLOW_LOAD  # noqa: E402


class RecordedWaits(threading.Event):
    """A slot's `ready` event that is never set: every wait on it is recorded and answered at once."""

    def __init__(self):
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


@pytest.fixture
def slots(monkeypatch):
    """The app's index slots from now on, each with a build under way that never ends."""
    from curation.ui import near_duplicate_hint as hint

    class BuildUnderWay(hint._Warm):
        def __init__(self):
            super().__init__(ready=RecordedWaits())
            self.building.acquire()  # as if another thread were building the index

    indexes: dict = {}
    monkeypatch.setattr(hint, "_indexes", indexes)
    monkeypatch.setattr(hint, "_Warm", BuildUnderWay)

    return indexes


def by_dataset(indexes: dict) -> dict:
    """The slots by dataset name (the app keys them by engine, dataset and fields)."""
    return {dataset: slot for (_, dataset, _), slot in list(indexes.items())}


@pytest.fixture
def studio(slots, tmp_path):
    """The users of tests.ui_server and one record in the dataset demo (small: indexed as soon as asked)."""
    from curation.services import annotation
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.models import Role

    url = f"sqlite:///{tmp_path / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        view = annotation.save_record(session, Actor("ann", Role.annotator), annotation.RecordForm(
            "demo", "Name the capital of France.", outputs=["Paris"], category="geography"))
        session.commit()
    engine.dispose()
    with running_studio(url) as running:
        running.record_id = view.id
        yield running


def save(client, record_id, version, dataset, instruction, output):
    return client.predict(record_id, version, dataset, "geography", "", instruction, "", output, "",
                          api_name="/record_save")


def test_saves_answer_with_the_record_while_the_index_is_still_being_built(studio, slots):
    ann = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)

    created = save(ann, None, None, "demo", "Name the capital of France, please.", "Paris")
    edited = save(ann, studio.record_id, 1, "demo", "Name the capital city of France.", "Paris")

    assert (created[1], created[6], created[8]) == (1, "Name the capital of France, please.", "Paris")
    assert (edited[0], edited[1], edited[6]) == (studio.record_id, 2, "Name the capital city of France.")
    made = by_dataset(slots)
    assert list(made) == ["demo"]
    assert made["demo"].hint is None and made["demo"].ready.waits == []


def test_a_save_to_a_dataset_that_does_not_exist_is_refused_before_any_index_work(studio, slots):
    ann = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)

    with pytest.raises(AppError) as refused:
        save(ann, None, None, "nope", "Say hi.", "Hi")
    with pytest.raises(AppError) as empty:
        save(ann, None, None, "demo", "   ", "Hi")

    assert str(refused.value) == "There is no dataset named 'nope'."
    assert str(empty.value) == "The instruction is empty."
    made = by_dataset(slots)
    assert "nope" not in made
    assert all(slot.ready.waits == [] for slot in made.values())
