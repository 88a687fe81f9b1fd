"""Scores per record: the AlpaGasus judge through a scripted server, IFD with the tiny causal LM checked against a
hand computation, the cheap signals; stored per record and recomputed only for records that changed."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from curation.llm import make_backend
from curation.records import RecordDraft
from curation.scores import ifd, judge, signals
from curation.services.permissions import Actor, PermissionDenied
from curation.services.scores import (record_scores, score_ifd, score_signals, score_with_judge, set_rubric,
                                      rubric_of)
from db import repo
from db.models import Role
from tests.openai_server import OpenAIServer, Reply

CURATOR = Actor("cora", Role.curator)
SHELF = [("Give three tips for staying healthy.", "", "Eat well, exercise and sleep."),
         ("What are the three primary colors?", "", "Red, blue and yellow."),
         ("Translate the sentence into French.", "I like cheese.", "J'aime le fromage.")]
RATINGS = {"Give three tips for staying healthy.": "Score: 4.5\nReason: Clear and correct.",
           "What are the three primary colors?": "Score: 3\nReason: Fine.",
           "Translate the sentence into French.": "I cannot rate this."}


def rating_reply(body):
    content = body["messages"][-1]["content"]
    instruction = re.search(r"Instruction: (.*)", content).group(1)
    return Reply(RATINGS[instruction])


# --- reading the judge ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, score, reason", [
    ("Score: 4\nReason: Accurate and helpful.", 4.0, "Accurate and helpful."),
    ("**Score:** 3.5\nThe answer misses one tip.", 3.5, "The answer misses one tip."),
    ("5\nExcellent.", 5.0, "Excellent."),
])
def test_the_judges_score_and_reason_are_read_back(text, score, reason):
    assert judge.parse_rating(text) == judge.Rating(score, reason)


@pytest.mark.parametrize("text, message", [("No idea.", "no score in the judge's reply"),
                                           ("Score: 7", "the judge's score 7 is outside 0 to 5")])
def test_a_reply_without_a_score_from_0_to_5_is_unreadable(text, message):
    with pytest.raises(judge.UnreadableRating, match=message):
        judge.parse_rating(text)


def test_an_sni_tasks_definition_and_negatives_become_the_rubric():
    rubric = judge.sni_rubric("Answer with yes or no.", [("Is water wet?", "Maybe.", "It is neither yes nor no.")])
    assert rubric.startswith("The task the instruction belongs to is defined as follows:\nAnswer with yes or no.")
    assert "Bad example 1\nInput: Is water wet?\nResponse: Maybe.\nWhy it is bad: It is neither yes nor no." in rubric
    request = judge.judge_request("Is fire hot?", "", "Yes.", rubric)
    assert "Instruction: Is fire hot?\nInput: \nResponse: Yes." in request.messages[-1]["content"]
    assert rubric in request.messages[-1]["content"]


# --- the judge through a backend, stored -------------------------------------------------------------------

@pytest.fixture
def shelf(session):
    dataset = repo.get_or_create_dataset(session, "shelf")
    return repo.insert_records(session, dataset.id, [RecordDraft(i, n, [o]) for i, n, o in SHELF], by="ana",
                               reason="import")


@pytest.fixture
def judge_server(monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    with OpenAIServer(replies=rating_reply) as server:
        yield server


def test_judge_ratings_are_stored_with_their_reasons_and_unreadable_replies_say_why(session, shelf, judge_server):
    backend = make_backend("openai", model="judge-model", base_url=judge_server.url, timeout=5)
    run = score_with_judge(session, dataset="shelf", backend=backend, actor=CURATOR)
    assert (run.computed, run.reused, run.failed) == (3, 0, 1)
    scores = record_scores(session, dataset="shelf", names=["judge"])
    assert scores[shelf[0]]["judge"] == (4.5, {"reason": "Clear and correct.", "model": "judge-model"})
    assert scores[shelf[1]]["judge"][0] == 3.0
    value, detail = scores[shelf[2]]["judge"]
    assert value is None and detail["reason"].startswith("no score in the judge's reply")


def test_a_second_run_rates_only_the_changed_record_and_a_new_rubric_rates_all(session, shelf, judge_server):
    backend = make_backend("openai", model="judge-model", base_url=judge_server.url, timeout=5)
    score_with_judge(session, dataset="shelf", backend=backend, actor=CURATOR)
    assert len(judge_server.requests) == 3
    again = score_with_judge(session, dataset="shelf", backend=backend, actor=CURATOR)
    assert (again.computed, again.reused) == (0, 3)
    repo.update_record(session, shelf[1], expected_version=1, changes={"outputs": ["Red, yellow and blue."]},
                       by="ana")
    session.commit()
    changed = score_with_judge(session, dataset="shelf", backend=backend, actor=CURATOR)
    assert (changed.computed, changed.reused) == (1, 2)
    assert len(judge_server.requests) == 4
    set_rubric(session, dataset="shelf", text="Rate only the grammar, 0 to 5.", actor=CURATOR)
    assert rubric_of(session, dataset="shelf") == "Rate only the grammar, 0 to 5."
    rubric_changed = score_with_judge(session, dataset="shelf", backend=backend, actor=CURATOR)
    assert rubric_changed.computed == 3
    assert "Rate only the grammar, 0 to 5." in judge_server.requests[-1]["messages"][-1]["content"]


def test_annotators_do_not_score(session, shelf, judge_server):
    backend = make_backend("openai", model="judge-model", base_url=judge_server.url, timeout=5)
    with pytest.raises(PermissionDenied, match="only a curator or admin scores a dataset"):
        score_with_judge(session, dataset="shelf", backend=backend, actor=Actor("ana", Role.annotator))


# --- IFD with the tiny causal LM ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path), str(path)


def hand_mean_nll(model, context: list[int], output: list[int]) -> float:
    """Mean -log p(output token | everything before it), one sequence, no padding, summed by hand."""
    import torch

    ids = torch.tensor([context + output])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    total = 0.0
    for position, token in enumerate(output, start=len(context)):
        total -= torch.log_softmax(logits[position - 1].double(), dim=-1)[token].item()
    return total / len(output)


def test_ifd_is_the_ratio_of_the_two_perplexities_computed_by_hand(tiny):
    model, tokenizer, _ = tiny
    records = [SHELF[0], SHELF[2]]
    results = ifd.difficulties(model, tokenizer, records, batch_size=2)  # one padded batch of different lengths
    for (instruction, input, output), result in zip(records, results):
        prompt = tokenizer(ifd.prompt_of(instruction, input), add_special_tokens=False)["input_ids"]
        answer = tokenizer(output, add_special_tokens=False)["input_ids"]
        given = math.exp(hand_mean_nll(model, prompt, answer))
        alone = math.exp(hand_mean_nll(model, [tokenizer.eos_token_id], answer))
        assert result.ppl_given_instruction == pytest.approx(given, rel=1e-4)
        assert result.ppl_alone == pytest.approx(alone, rel=1e-4)
        assert result.ifd == pytest.approx(given / alone, rel=1e-4)


def test_an_empty_output_has_no_ifd(tiny):
    model, tokenizer, _ = tiny
    assert ifd.difficulties(model, tokenizer, [("Say nothing.", "", "")]) == [None]


def test_ifd_and_perplexity_are_stored_and_not_recomputed(session, shelf, tiny):
    model, tokenizer, path = tiny
    run = score_ifd(session, dataset="shelf", model=path, actor=CURATOR, loaded=(model, tokenizer, "cpu"))
    assert (run.computed, run.reused) == (3, 0)
    scores = record_scores(session, dataset="shelf", names=["ifd", "ppl"])
    value, detail = scores[shelf[0]]["ifd"]
    assert value == pytest.approx(detail["ppl_given_instruction"] / detail["ppl_alone"])
    assert scores[shelf[0]]["ppl"][0] == pytest.approx(detail["ppl_alone"])
    again = score_ifd(session, dataset="shelf", model=path, actor=CURATOR, loaded=(model, tokenizer, "cpu"))
    assert (again.computed, again.reused) == (0, 3)


# --- the cheap signals -------------------------------------------------------------------------------------

def test_mtld_of_a_text_that_never_repeats_is_its_length_and_repetition_lowers_it():
    assert signals.mtld("one two three four") == 4.0
    assert signals.mtld("the cat the cat the cat the cat") < signals.mtld("a quick brown fox jumps over lazy dogs")


@pytest.mark.parametrize("text, code", [("The cat is on the mat and it is happy.", "en"),
                                        ("Le chat est sur la table et il dort dans le salon.", "fr"),
                                        ("Der Hund und die Katze sind nicht im Haus.", "de"),
                                        ("Привет, как дела?", "ru"), ("今日はいい天気ですね", "ja"),
                                        ("12345", "und")])
def test_the_language_is_told_by_script_then_stopwords(text, code):
    assert signals.language(text) == code


def test_the_nearest_neighbour_distance_finds_the_isolated_record():
    vectors = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    assert signals.nearest_neighbour_distance(vectors).tolist() == pytest.approx([0.2, 0.2, 0.4, 1.0])


def test_signals_are_stored_per_record(session, shelf):
    vectors = lambda records: np.eye(3, dtype=np.float32)[:len(records)]  # noqa: E731 - three orthogonal records
    run = score_signals(session, dataset="shelf", actor=CURATOR, vectors=vectors)
    assert (run.computed, run.reused) == (3, 0)
    scores = record_scores(session, dataset="shelf")
    assert scores[shelf[1]]["length"] == (4.0, None)
    assert scores[shelf[2]]["language"] == (None, {"language": "en", "output_language": "fr"})
    assert scores[shelf[0]]["nn_distance"] == (1.0, None)
    assert scores[shelf[0]]["mtld"][0] == 5.0
    assert score_signals(session, dataset="shelf", actor=CURATOR, vectors=vectors).computed == 0


# --- the command line --------------------------------------------------------------------------------------

def test_the_cli_scores_with_a_configured_judge_then_selects_lists_and_compares(sqlite_url, judge_server,
                                                                                   monkeypatch, capsys):
    from curation.cli import main
    from db.engine import open_database, session_for

    for name in ("LLM_MODEL", "LLM_BASE_URL", "LLM_BACKEND", "LLM_API_KEY_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_MODELS", f"Judge=openai:judge-model@{judge_server.url}")
    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        dataset = repo.get_or_create_dataset(session, "shelf")
        ids = repo.insert_records(session, dataset.id, [RecordDraft(i, n, [o]) for i, n, o in SHELF], by="ana",
                                  reason="import")
        session.commit()
    engine.dispose()
    assert main(["--db", sqlite_url, "score", "--dataset", "shelf", "--judge", "Judge"]) == 0
    assert "judge computed for 3 records, 0 unchanged, 1 without a readable rating" in capsys.readouterr().out
    assert main(["--db", sqlite_url, "select", "--dataset", "shelf", "--method", "top", "--n", "1",
                 "--name", "one"]) == 0
    assert main(["--db", sqlite_url, "select", "--dataset", "shelf", "--method", "threshold", "--min", "3",
                 "--name", "good"]) == 0
    capsys.readouterr()
    assert main(["--db", sqlite_url, "select", "list", "--dataset", "shelf"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == ["good", "one"]
    assert listed[1].startswith("one: 1 records, top 1 by judge:1, revision ")
    assert main(["--db", sqlite_url, "select", "compare", "one", "good", "--dataset", "shelf"]) == 0
    assert capsys.readouterr().out.strip() == "one: 1, good: 2, both: 1, only one: 0, only good: 1, jaccard 0.500"
    assert main(["--db", sqlite_url, "select", "--dataset", "shelf", "--score", "ifd", "--method", "top",
                 "--n", "1", "--name", "x"]) == 2
    assert "no record of 'shelf' has a 'ifd' score yet" in capsys.readouterr().err
    assert ids


def test_the_cli_measures_ifd_with_a_causal_lm_folder_and_names_a_missing_one(sqlite_url, tiny, capsys):
    from curation.cli import main
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        dataset = repo.get_or_create_dataset(session, "shelf")
        repo.insert_records(session, dataset.id, [RecordDraft(i, n, [o]) for i, n, o in SHELF], by="ana",
                            reason="import")
        session.commit()
    engine.dispose()
    assert main(["--db", sqlite_url, "score", "--dataset", "shelf", "--ifd", tiny[2], "--device", "cpu"]) == 0
    assert "ifd, ppl computed for 3 records, 0 unchanged" in capsys.readouterr().out
    assert main(["--db", sqlite_url, "score", "--dataset", "shelf", "--ifd", tiny[2]]) == 0
    assert "ifd, ppl computed for 0 records, 3 unchanged" in capsys.readouterr().out
    missing = str(Path(tiny[2]).parent / "no-such-model")
    assert main(["--db", sqlite_url, "score", "--dataset", "shelf", "--ifd", missing]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot load the causal LM {missing!r}: ")
