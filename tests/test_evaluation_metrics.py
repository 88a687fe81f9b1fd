"""Evaluation arithmetic: ROUGE-L and exact match against rouge-score and SQuAD, the test loss of the tiny causal LM
recomputed by hand, and the pairwise judge through a scripted server in both orders, raw and length-controlled."""
from __future__ import annotations

import math
import re

import pytest

from curation.evaluation import metrics, pairwise, perplexity
from curation.evaluation.pairwise import PairJudgement, UnreadableVerdict
from curation.llm import make_backend
from tests.openai_server import Failure, OpenAIServer, Reply

# --- ROUGE-L and exact match ---------------------------------------------------------------------------------

PAIRS = [("The cat sat on the mat.", "A cat was sitting on the mat"),
         ("Red, blue and yellow.", "The three primary colors are red, blue and yellow."),
         ("J'aime le fromage.", "J’aime beaucoup le fromage !"),
         ("Count: 1 2 3 4 5", "1, 2, 3, 4 and 5"),
         ("", "Something"), ("!!!", "..."), ("same words here", "same words here"),
         ("ÉTÉ à Paris", "ete a paris")]


@pytest.mark.parametrize("prediction, reference", PAIRS)
def test_rouge_l_is_rouge_scores_f1(prediction, reference):
    from rouge_score import rouge_scorer

    expected = rouge_scorer.RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"].fmeasure
    assert metrics.rouge_l(prediction, reference) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("prediction, reference, same", [
    ("The Eiffel Tower!", "eiffel tower", True),
    ("an apple", "Apple.", True),
    ("  Paris,\tFrance ", "paris france", True),
    ("A theory", "theory", True),  # "a" goes, the "the" inside "theory" stays
    ("the cat", "the dog", False),
    ("Paris", "Paris, France", False),
])
def test_exact_match_compares_answers_as_squad_normalises_them(prediction, reference, same):
    assert metrics.exact_match(prediction, reference) is same


def test_answer_scores_are_the_mean_rouge_l_and_the_share_of_exact_matches():
    # ROUGE-L 1, then 2 * 1 ("sat") / (3 + 3) words, then 0; only the first matches exactly.
    scores = metrics.answer_scores(["Red, blue and yellow.", "the cat sat", "Paris"],
                                   ["red blue and yellow", "a dog sat", "London"])
    assert scores == {"rouge_l": pytest.approx((1.0 + 2 * 1 / 6 + 0.0) / 3), "exact_match": pytest.approx(1 / 3),
                      "n": 3}
    assert metrics.answer_scores([], []) == {"rouge_l": None, "exact_match": None, "n": 0}
    with pytest.raises(ValueError, match="2 answers for 1 reference outputs"):
        metrics.answer_scores(["a", "b"], ["a"])


# --- test loss and perplexity with the tiny causal LM --------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


EXAMPLES = [
    ([{"role": "user", "content": "What are the three primary colors?"}], "Red, blue and yellow."),
    ([{"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Give three tips for staying healthy."}],
     "Eat a balanced diet, exercise regularly and sleep well every night."),
]


def chatml_prompt(messages: list[dict]) -> str:
    """The prompt written out by hand as ChatML, ending where the assistant's reply starts."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def hand_nll(model, context: list[int], scored: list[int]) -> list[float]:
    """-log p(token | everything before it) for each scored token: one sequence, no padding, no batching."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + scored])).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    return [-log_probs[position - 1, token].item() for position, token in enumerate(scored, start=len(context))]


def hand_scored(tokenizer, messages, output):
    prompt = tokenizer(chatml_prompt(messages), add_special_tokens=False)["input_ids"]
    answer = tokenizer(output, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt, answer


def test_the_test_loss_is_the_output_tokens_nll_computed_by_hand(tiny):
    model, tokenizer = tiny
    per_example, total, tokens = [], 0.0, 0
    for messages, output in EXAMPLES:
        prompt, answer = hand_scored(tokenizer, messages, output)
        nll = hand_nll(model, prompt, answer)
        per_example.append(sum(nll) / len(nll))
        total, tokens = total + sum(nll), tokens + len(nll)
    assert len({len(p) + len(a) for p, a in (hand_scored(tokenizer, *e) for e in EXAMPLES)}) == 2  # padding used

    result = perplexity.test_loss(model, tokenizer, EXAMPLES, batch_size=2)

    assert result.tokens == tokens
    assert result.tokens == sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) + 1 for _, o in EXAMPLES)
    assert result.per_example == pytest.approx(per_example, abs=1e-5)
    assert result.loss == pytest.approx(total / tokens, abs=1e-5)
    assert result.perplexity == pytest.approx(math.exp(total / tokens), rel=1e-5)
    one_by_one = perplexity.test_loss(model, tokenizer, EXAMPLES, batch_size=1)
    assert one_by_one.per_example == pytest.approx(result.per_example, abs=1e-5)


def test_a_long_prompt_loses_its_start_and_the_output_is_still_scored_whole(tiny):
    model, tokenizer = tiny
    messages, output = EXAMPLES[1]
    prompt, answer = hand_scored(tokenizer, messages, output)
    kept = 4
    result = perplexity.test_loss(model, tokenizer, [(messages, output)], max_length=len(answer) + kept)
    nll = hand_nll(model, prompt[-kept:], answer)
    assert result.tokens == len(answer)
    assert result.loss == pytest.approx(sum(nll) / len(nll), abs=1e-5)


def test_a_tokenizer_without_a_chat_template_gets_the_training_scripts_chatml(tiny):
    import copy

    model, tokenizer = tiny
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    assert perplexity.test_loss(model, bare, EXAMPLES).per_example == pytest.approx(
        perplexity.test_loss(model, tokenizer, EXAMPLES).per_example, abs=1e-6)


def test_the_loss_reports_progress_by_batch_and_needs_examples(tiny):
    model, tokenizer = tiny
    seen = []
    perplexity.test_loss(model, tokenizer, EXAMPLES * 2, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3, 4), (4, 4)]
    with pytest.raises(ValueError, match="no test examples"):
        perplexity.test_loss(model, tokenizer, [])


# --- reading the pairwise judge ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, verdict", [
    ("Verdict: 1\nReason: More complete.", "first"),
    ("**Verdict:** 2\nReason: Correct.", "second"),
    ("verdict = Tie\nReason: Both fine.", "tie"),
    ("Verdict: Response 2", "second"),
    ("2\nThe second one is right.", "second"),
    ("Reason: the first misses a colour.\nVerdict: 2", "second"),
])
def test_the_judges_verdict_is_read_back(text, verdict):
    assert pairwise.parse_verdict(text) == verdict


@pytest.mark.parametrize("text", ["I cannot decide.", "Verdict: 3", "Verdict: 12", ""])
def test_a_reply_without_a_verdict_is_unreadable(text):
    with pytest.raises(UnreadableVerdict, match=r"no verdict \(1, 2 or tie\) in the judge's reply"):
        pairwise.parse_verdict(text)


@pytest.mark.parametrize("a_first, b_first, expected", [
    ("first", "second", 1.0),  # A wins in both orders
    ("second", "first", 0.0),  # B wins in both orders
    ("first", "first", 0.5),  # position bias: the first shown always wins
    ("tie", "tie", 0.5),
    ("first", "tie", 0.75),
    (None, "second", 1.0),  # one readable order decides alone
    ("tie", None, 0.5),
    (None, None, None),
])
def test_preference_averages_both_orders_to_cancel_position_bias(a_first, b_first, expected):
    assert pairwise.preference(PairJudgement(a_first, b_first)) == expected


def test_the_request_shows_both_responses_and_the_reference_when_there_is_one():
    request = pairwise.pairwise_request("Name a colour.", "Red.", "Blue.", "Green.")
    text = request.messages[-1]["content"]
    assert request.temperature == 0.0 and request.messages[0]["role"] == "system"
    assert "## Instruction\nName a colour.\n\n## Reference answer\nRed.\n\n## Response 1\nBlue.\n\n" \
           "## Response 2\nGreen." in text
    assert '"Verdict: 1", "Verdict: 2" or "Verdict: tie"' in text
    assert "Reference" not in pairwise.pairwise_request("Name a colour.", None, "Blue.", "Green.").messages[-1][
        "content"]


# --- the judge through a scripted server ---------------------------------------------------------------------

def shown(body) -> tuple[str, str]:
    """(response 1, response 2) as the judge was shown them."""
    text = body["messages"][-1]["content"]
    return (re.search(r"## Response 1\n(.*?)\n\n## Response 2", text, re.S).group(1),
            re.search(r"## Response 2\n(.*?)\n\n", text, re.S).group(1))


def first_always(body):
    return Reply("Verdict: 1\nReason: The first one reads well.")


def prefers_tuned(body):
    first, second = shown(body)
    return Reply("Verdict: 1\nReason: Tuned." if first.startswith("tuned") else "Verdict: 2\nReason: Tuned.")


def prefers_longer(body):
    first, second = shown(body)
    if len(first) == len(second):
        return Reply("Verdict: tie\nReason: Equally long.")
    return Reply(f"Verdict: {1 if len(first) > len(second) else 2}\nReason: Longer is better.")


@pytest.fixture
def judge(monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    with OpenAIServer() as server:
        yield server, make_backend("openai", model="judge-model", base_url=server.url, timeout=5)


ITEMS = [(f"Question {i}?", None, f"tuned answer {i}", f"base answer {i}, longer") for i in range(3)]


def test_a_judge_that_always_picks_the_first_shown_gives_every_pair_one_half(judge):
    server, backend = judge
    server.replies = first_always
    judgements = pairwise.judge_pairs(backend, ITEMS, concurrency=1)
    assert [(j.a_first, j.b_first) for j in judgements] == [("first", "first")] * 3
    assert [pairwise.preference(j) for j in judgements] == [0.5, 0.5, 0.5]
    assert pairwise.win_rate([pairwise.preference(j) for j in judgements]) == 0.5
    # Both orders were asked, with the answers swapped, and each raw reply is kept.
    assert [shown(body) for body in server.requests] == [
        (a, b) for _, _, answer_a, answer_b in ITEMS for a, b in ((answer_a, answer_b), (answer_b, answer_a))]
    assert judgements[0].a_first_reply == judgements[0].b_first_reply == "Verdict: 1\nReason: The first one reads well."
    assert all(body["temperature"] == 0.0 for body in server.requests)


def test_a_judge_that_prefers_one_answer_in_both_orders_gives_it_every_pair(judge):
    server, backend = judge
    server.replies = prefers_tuned
    preferences = [pairwise.preference(j) for j in pairwise.judge_pairs(backend, ITEMS)]
    assert preferences == [1.0, 1.0, 1.0] and pairwise.win_rate(preferences) == 1.0
    swapped = [(q, r, b, a) for q, r, a, b in ITEMS]
    assert pairwise.win_rate([pairwise.preference(j) for j in pairwise.judge_pairs(backend, swapped)]) == 0.0


def test_a_judge_that_prefers_the_longer_answer(judge):
    server, backend = judge
    server.replies = prefers_longer
    items = [("Q1?", None, "short", "much longer"), ("Q2?", None, "a long answer", "brief"),
             ("Q3?", None, "same!", "size!")]
    judgements = pairwise.judge_pairs(backend, items)
    assert [(j.a_first, j.b_first) for j in judgements] == [("second", "first"), ("first", "second"), ("tie", "tie")]
    assert [pairwise.preference(j) for j in judgements] == [0.0, 1.0, 0.5]
    assert pairwise.win_rate([pairwise.preference(j) for j in judgements]) == 0.5


def test_an_unreadable_or_failed_order_is_none_and_the_other_order_decides(judge):
    server, backend = judge
    server.replies = prefers_tuned
    server.script(Reply("I cannot decide between these."), Reply("Verdict: 1\nReason: ok"),
                  Reply("Verdict: 2\nReason: ok"), Failure(400, "This prompt is too long."))
    judgements = pairwise.judge_pairs(backend, ITEMS[:2], concurrency=1)
    first, second = judgements
    assert (first.a_first, first.b_first) == (None, "first")  # B shown first and said first: B wins
    assert first.a_first_reply == "I cannot decide between these."
    assert "no verdict (1, 2 or tie) in the judge's reply" in first.a_first_error
    assert (second.a_first, second.b_first) == ("second", None)
    assert second.b_first_reply is None and "too long" in second.b_first_error
    assert [pairwise.preference(j) for j in judgements] == [0.0, 0.0]
    assert pairwise.win_rate([None, None, 0.5, 1.0]) == 0.75
    with pytest.raises(ValueError, match="no pair has a readable verdict"):
        pairwise.win_rate([None, None])


def test_a_judge_that_refuses_every_request_stops_the_run(monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-wrong")
    with OpenAIServer(api_key="sk-right") as server:
        backend = make_backend("openai", model="judge-model", base_url=server.url, timeout=5)
        with pytest.raises(pairwise.JudgeStopped, match="the judge stopped answering: .*401") as stopped:
            pairwise.judge_pairs(backend, ITEMS, concurrency=1)
    assert len(stopped.value.judgements) == 3
    assert all(j.a_first is None and j.b_first is None for j in stopped.value.judgements)


class MemoryCache:
    def __init__(self):
        self.replies = {}

    def get_many(self, keys):
        return {key: self.replies[key] for key in keys if key in self.replies}

    def put(self, key, identity, request, reply):
        self.replies[key] = reply


def test_a_second_judging_of_the_same_pairs_comes_from_the_cache(judge):
    server, backend = judge
    server.replies = prefers_tuned
    cache, seen = MemoryCache(), []
    first = pairwise.judge_pairs(backend, ITEMS, cache=cache, progress=lambda d, t: seen.append((d, t)))
    again = pairwise.judge_pairs(backend, ITEMS, cache=cache)
    assert len(server.requests) == 6 and again == first and seen[-1] == (6, 6)


# --- length-controlled win rate ------------------------------------------------------------------------------

def test_length_control_takes_back_what_a_judge_of_length_alone_gave(judge):
    """18 tuned answers longer, 1 as long, 1 shorter, judged by length alone: the raw win rate is 18.5 / 20.

    At zero length difference this judge is indifferent (the equal pair is a tie in both orders), and the fit's
    slope on length is barely penalized, so the prediction at no length difference sits near 0.5 (0.52 here, the
    rest of the way being the weak L2 penalty); without length control it would stay at 0.925.
    """
    server, backend = judge
    server.replies = prefers_longer
    items = [(f"Q{i}?", None, f"tuned answer {i} with some more words", f"base answer {i}") for i in range(18)]
    items += [("Q18?", None, "tuned answer 18", "base answer 18!"), ("Q19?", None, "tuned 19", "base answer 19")]
    preferences = [pairwise.preference(j) for j in pairwise.judge_pairs(backend, items)]
    lengths_a, lengths_b = [len(a) for _, _, a, _ in items], [len(b) for _, _, _, b in items]
    assert preferences == [1.0] * 18 + [0.5, 0.0]
    assert pairwise.win_rate(preferences) == 0.925
    controlled = pairwise.length_controlled_win_rate(preferences, lengths_a, lengths_b)
    assert 0.5 <= controlled < 0.6


def test_with_no_length_difference_or_no_length_signal_the_two_win_rates_agree():
    preferences = [1.0, 1.0, 0.0, 0.5, 1.0, 0.75, 0.0, 1.0]
    same = [120] * 8
    assert pairwise.length_controlled_win_rate(preferences, same, same) == pairwise.win_rate(preferences)
    # Each preference seen once with A longer and once with B longer: length says nothing, the fit's slope is 0.
    both = preferences + preferences
    lengths_a = [130, 90, 150, 70, 110, 140, 60, 100] + [70, 110, 50, 130, 90, 60, 140, 100]
    lengths_b = [100] * 16
    assert pairwise.length_controlled_win_rate(both, lengths_a, lengths_b) == pytest.approx(
        pairwise.win_rate(both), abs=1e-4)


def test_too_few_pairs_or_one_outcome_only_fall_back_to_the_raw_win_rate():
    assert pairwise.length_controlled_win_rate([1.0, 0.0, 1.0, None], [10, 90, 80, 5], [50, 50, 50, 50]) == 2 / 3
    assert pairwise.length_controlled_win_rate([1.0] * 6, [10, 20, 30, 40, 50, 60], [35] * 6) == 1.0
    with pytest.raises(ValueError, match="one preference and two answer lengths"):
        pairwise.length_controlled_win_rate([1.0], [1, 2], [1])
