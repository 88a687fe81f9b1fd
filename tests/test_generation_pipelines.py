"""Growing a dataset with a model: Self-Instruct from seeds, Evol-Instruct on chosen records, SNI task expansion,
against a loopback chat server whose scripted model answers by the prompt it is shown."""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading

import pytest

from curation.dedup import lexical_pairs, rouge_l, rouge_tokens
from curation.generation import Budget
from curation.generation import prompts
from curation.generation.evol_instruct import OPERATIONS, given_prompt, run_evol_instruct
from curation.generation.filters import (RougePool, cannot_answer_drop, copies_prompt_drop, instruction_drop,
                                         no_information_gain_drop, only_stop_words_drop, rouge_drop)
from curation.generation.self_instruct import (SeedTask, load_seed_tasks, parse_instructions, run_self_instruct,
                                              seeds_from_records)
from curation.generation.sni_expansion import label_cap, run_expand_task
from curation.llm import RetryPolicy, make_backend
from curation.records import ExampleDraft, RecordDraft, TaskDraft
from tests.conftest import SHARED_DATA, requires_shared_data
from tests.tiny_model import served_tiny_model
from tests.openai_server import Failure, OpenAIServer, Reply

NO_RETRY = RetryPolicy(attempts=1)


class MemoryCache:
    """The ReplyCache protocol in a dict, as DatabaseReplyCache is in a table."""

    def __init__(self):
        self.replies = {}

    def get_many(self, keys):
        return {key: self.replies[key] for key in keys if key in self.replies}

    def put(self, key, identity, request, reply):
        self.replies[key] = reply


def system_of(body) -> str:
    return body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""


def user_of(body) -> str:
    return body["messages"][-1]["content"]


def shown_instructions(body) -> list[str]:
    return re.findall(r"^\d+\. (.*)$", user_of(body).split("\n\n")[0], re.MULTILINE)


def numbered(items: list[str], start: int = 9) -> str:
    return "\n".join(f"{n}. {item}" for n, item in enumerate(items, start=start))


def instance_reply(body) -> Reply:
    """One instance: a label first for the output-first prompt, an input first otherwise."""
    if "This is a classification task" in user_of(body):
        return Reply("Output: first\nInput: A case to sort.")
    return Reply("Input: <noinput>\nOutput: A short answer.")


def answer_kinds_and_instances(body) -> Reply | None:
    if system_of(body) == prompts.CLASSIFY_SYSTEM:
        return Reply("Yes" if "Task: Classify" in user_of(body) else "No")
    if system_of(body) == prompts.INSTANCE_SYSTEM:
        return instance_reply(body)
    return None


@pytest.fixture
def model():
    """A loopback server; set server.model(body) to answer; every request body is in server.requests."""
    with OpenAIServer(replies=lambda body: running.model(body)) as running:
        yield running


def backend_for(server):
    return make_backend("openai", model="loopback-model", base_url=server.url, timeout=10)


SEEDS = [SeedTask(f"s{n}", f"seed_{n}", text, [{"input": "", "output": "ok"}], text.startswith("Classify"))
         for n, text in enumerate([
             "Give three tips for staying healthy.", "Classify the animal as a mammal or a bird.",
             "Write a limerick about a forgetful cat.", "Explain why the sky looks blue at noon.",
             "Suggest a name for a bakery that sells only bread.", "Summarize the paragraph in one sentence.",
             "Translate the greeting into Spanish.", "Find the odd word out in the list.",
             "Rewrite the sentence in the passive voice.", "Estimate how long it takes to walk ten kilometres."])]


# ---- filters ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, rule, reason", [
    ("Name two rivers.", "too_short", "3 words; an instruction needs at least 4"),
    (" ".join(["word"] * 151), "too_long", "151 words; an instruction has at most 150"),
    ("Describe the picture of a sunset over the sea.", "blacklist",
     "mentions “picture”, which a text-only model cannot see, make or do"),
    ("Go to the shop and buy some milk.", "blacklist",
     "mentions “go to”, which a text-only model cannot see, make or do"),
    ("\"Write a poem about the moon.", "punctuation_start", "starts with punctuation (“\"”)"),
    ("Écris un poème sur la lune.", "non_ascii_start", "starts with a non-ASCII character (“É”)"),
])
def test_each_self_instruct_filter_drops_with_its_rule_and_reason(text, rule, reason):
    drop = instruction_drop(text)
    assert (drop.rule, drop.reason, drop.text) == (rule, reason, text)


def test_an_instruction_that_passes_every_filter_is_kept():
    assert instruction_drop("Write a poem about the moon.") is None
    assert instruction_drop("Summarize the mapping of genes.") is None  # "map" only as a whole word


def test_rouge_l_is_checked_against_the_seed_pool_and_the_dataset():
    pool = RougePool(["Give three tips for staying healthy."] + ["List the planets in order from the sun."])
    from_seed = rouge_drop(pool, "Give three tips for staying healthy and happy.")
    from_dataset = rouge_drop(pool, "List the planets in order from the sun, please.")
    assert (from_seed.rule, from_seed.reason) == ("rouge_l", "ROUGE-L 0.86 with “Give three tips for staying healthy.”")
    assert from_dataset.reason == "ROUGE-L 0.94 with “List the planets in order from the sun.”"
    assert rouge_drop(pool, "Write a haiku about autumn rain.") is None


def test_a_rouge_l_of_exactly_0_7_is_kept_and_above_it_dropped():
    pool = RougePool(["a b c d e f g h i j"])
    assert rouge_l(rouge_tokens("a b c d e f g x y z"), rouge_tokens("a b c d e f g h i j")) == 0.7
    assert pool.closest("a b c d e f g x y z") is None
    assert pool.closest("a b c d e f g h x y") == (0.8, "a b c d e f g h i j")


def test_the_pool_scores_as_curation_dedup_rouge_l_does():
    rng = random.Random(3)
    words = "the a of to write give list explain tips three sky blue cat poem rain sun moon why how".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(200)]
    for query in texts[:40]:
        pool = RougePool([t for t in texts if t != query])
        found = pool.closest(query, cutoff=0.0)
        best = max(rouge_l(rouge_tokens(query), rouge_tokens(t)) for t in texts if t != query)
        assert found[0] == best
        assert rouge_l(rouge_tokens(query), rouge_tokens(found[1])) == found[0]
    assert RougePool(["Write a poem."]).closest("!!!") is None


@pytest.mark.parametrize("check, rule, reason", [
    (lambda: copies_prompt_drop("#Rewritten Prompt#: Write a sonnet about rain."), "copies_prompt",
     "copies “#Rewritten Prompt#” from the evolving prompt"),
    (lambda: copies_prompt_drop("Rewrite the given prompt as a question."), "copies_prompt",
     "copies “given prompt” from the evolving prompt"),
    (lambda: only_stop_words_drop("What is it, and why?"), "only_stop_words",
     "the evolved instruction holds only punctuation and stop words"),
    (lambda: cannot_answer_drop("I'm sorry, but I cannot help with that.", "Prove it."), "cannot_answer",
     "the answer says “sorry” in 8 words (under 80): the model could not answer it"),
    (lambda: no_information_gain_drop("Equal", "Write a poem."), "no_information_gain",
     "the model judged it equal to the instruction it evolved from"),
])
def test_each_evol_elimination_rule_drops_with_its_rule_and_reason(check, rule, reason):
    drop = check()
    assert (drop.rule, drop.reason) == (rule, reason)


def test_evol_keeps_what_no_rule_eliminates():
    assert copies_prompt_drop("Write a sonnet about rain in iambic pentameter.") is None
    assert only_stop_words_drop("Why is the sky blue?") is None
    assert cannot_answer_drop("Sorry to hear that. " + "word " * 80, "x") is None  # sorry, but a long answer
    assert no_information_gain_drop("Not Equal", "x") is None


# ---- seed files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ("", "seeds.jsonl holds no seed tasks"),
    ("\n\n", "seeds.jsonl holds no seed tasks"),
    ('{"id": "a", "instruction": "Give tips.", "instances": []}\n{"id": "b", "instruction": \n',
     "seeds.jsonl, line 2: not JSON (Expecting value)"),
    ('{"id": "a", "instruction": "   ", "instances": []}\n', "seeds.jsonl, line 1: no instruction"),
    ('["Give tips."]\n', "seeds.jsonl, line 1: a seed task is a JSON object"),
    ('{"id": "a", "instruction": "Give tips.", "instances": [{"input": ""}]}\n',
     'seeds.jsonl, line 1: instances must be a list of {"input", "output"} texts'),
    ('{"id": "a", "instruction": "Give tips.", "instances": [], "is_classification": "no"}\n',
     "seeds.jsonl, line 1: is_classification must be true or false"),
])
def test_a_malformed_seed_file_says_which_line(tmp_path, content, message):
    path = tmp_path / "seeds.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError) as error:
        load_seed_tasks(path)
    assert str(error.value) == message


def test_seeds_can_come_from_a_datasets_records():
    seeds = seeds_from_records([("record-1", " Give three tips. ", "", "Eat well."), ("record-2", "", "x", "y")])
    assert seeds == [SeedTask("record-1", "", "Give three tips.", [{"input": "", "output": "Eat well."}])]
    with pytest.raises(ValueError, match="^no record has an instruction to seed from$"):
        seeds_from_records([("record-2", "  ", "", "")])


@requires_shared_data
def test_the_self_instruct_seed_file_loads():
    seeds = load_seed_tasks(SHARED_DATA / "seeds" / "self_instruct_seed_tasks.jsonl")
    assert len(seeds) == 175
    assert (seeds[0].id, seeds[0].name) == ("seed_task_0", "breakfast_suggestion")
    assert 0 < sum(s.is_classification for s in seeds) < 175


# ---- Self-Instruct ----------------------------------------------------------------------------------------

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
NONCE = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in "lmnrst"]  # made-up words: "kabol", "tizun"
VERBS = ["Explain", "Describe", "Summarize", "Compare", "List", "Suggest", "Rewrite", "Outline", "Evaluate", "Plan"]


def fresh_instructions(count: int = 60) -> list[str]:
    """Instructions of made-up words, far apart by ROUGE-L; every fourth is a classification task."""
    rng = random.Random(11)
    words = rng.sample(NONCE, count * 7)
    made = []
    for n in range(count):
        w = words[n * 7:(n + 1) * 7]
        made.append(f"Classify {w[0]} {w[1]} {w[2]} {w[3]} as {w[4]} or {w[5]}." if n % 4 == 0 else
                    f"{VERBS[n % len(VERBS)]} {w[0]} {w[1]} {w[2]} {w[3]} {w[4]} {w[5]} {w[6]}.")
    return made


FRESH = fresh_instructions()


def self_instruct_model(body) -> Reply:
    """8 new tasks per prompt, chosen by the prompt: 5 from FRESH, a near-copy of a shown task, one blacklisted
    and one too short; once FRESH is used up, the model only repeats itself."""
    answered = answer_kinds_and_instances(body)
    if answered is not None:
        return answered
    shown = shown_instructions(body)
    rng = random.Random(hashlib.sha256(user_of(body).encode()).hexdigest())
    items = rng.sample(FRESH, 5) + [shown[0] + " now", "Draw a map of the old town.", "Hum softly."]
    rng.shuffle(items)
    return Reply(numbered(items))


@requires_shared_data
def test_a_self_instruct_run_from_the_175_seeds_keeps_only_instructions_far_from_each_other(model):
    seeds = load_seed_tasks(SHARED_DATA / "seeds" / "self_instruct_seed_tasks.jsonl")
    model.model = self_instruct_model
    kept, progress = [], []
    report = run_self_instruct(backend_for(model), seeds, existing=["Plan a picnic for six friends in May."],
                               target=10_000, on_keep=kept.append, seed=5, batch_size=4,
                               on_progress=lambda done, target: progress.append(done))

    assert report.stopped == "no new candidates"
    assert report.kept == report.written == len(kept) > 20
    texts = [s.instruction for s in seeds] + [c.instruction for c in kept]
    assert [p for p in lexical_pairs(texts, 0.7) if p[1] >= len(seeds) and p[2] > 0.7] == []
    assert set(c.instruction for c in kept) <= set(FRESH)

    asked = [b for b in model.requests if system_of(b) == prompts.SELF_INSTRUCT_SYSTEM]
    seed_texts = {" ".join(s.instruction.split()).rstrip(":") for s in seeds}
    machine = {c.instruction for c in kept}
    for n, body in enumerate(asked):
        shown = shown_instructions(body)
        assert len(shown) == 8
        from_seeds = sum(text in seed_texts for text in shown)
        assert (from_seeds, sum(text in machine for text in shown)) == ((8, 0) if n < 4 else (6, 2))
    parsed = sum(len(parse_instructions(self_instruct_model(b).text)) for b in asked)
    assert report.kept + report.dropped == parsed == 8 * len(asked)
    assert set(report.drops) == {"rouge_l", "blacklist", "too_short"}
    assert report.drops["blacklist"] == report.drops["too_short"] == len(asked)
    assert report.requested == len(model.requests) == len(asked) + 2 * report.kept

    for body in model.requests:
        if system_of(body) == prompts.INSTANCE_SYSTEM:
            task = user_of(body).split("\n\n")[0].removeprefix("Task: ")
            assert ("This is a classification task" in user_of(body)) == task.startswith("Classify")
    assert all(c.is_classification == c.instruction.startswith("Classify") for c in kept)
    classify = next(c for c in kept if c.is_classification)
    assert (classify.input, classify.output) == ("A case to sort.", "first")
    plain = next(c for c in kept if not c.is_classification)
    assert (plain.input, plain.output) == ("", "A short answer.")
    assert (len(kept[0].seeds), len(kept[-1].seeds)) == (8, 6)  # the first round shows no machine instruction
    assert all(s.startswith("seed_task_") for s in kept[-1].seeds)
    assert len(plain.cache_keys) == 3 and progress[-1] == report.kept


def test_the_first_prompt_shows_eight_seeds_and_asks_for_eight_more(model):
    model.model = self_instruct_model
    run_self_instruct(backend_for(model), SEEDS, target=1, batch_size=1)
    body = model.requests[0]
    assert body["messages"][0] == {"role": "system", "content": prompts.SELF_INSTRUCT_SYSTEM}
    shown = shown_instructions(body)
    assert len(shown) == 8 and set(shown) <= {s.instruction for s in SEEDS}
    assert user_of(body).endswith("\n\nContinue the list with 8 new tasks, numbered 9 to 16.")
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.5, 1024)


def test_a_model_that_only_repeats_the_seeds_ends_with_a_report_that_says_so(model):
    model.model = lambda body: answer_kinds_and_instances(body) or Reply(numbered(shown_instructions(body)))
    kept = []
    report = run_self_instruct(backend_for(model), SEEDS, target=50, batch_size=2, on_keep=kept.append)
    assert (report.stopped, report.kept, kept) == ("no new candidates", 0, [])
    assert report.drops == {"rouge_l": 3 * 2 * 8}
    assert report.requested == 3 * 2
    assert report.examples["rouge_l"][0].reason.startswith("ROUGE-L 1.00 with “")


def test_an_unparseable_reply_and_a_cut_off_last_item_are_dropped_and_counted(model):
    replies = {0: Reply("I would rather not."),
               1: Reply(numbered(FRESH[1:3] + ["Describe the ocean in four"]), finish_reason="length")}
    later = Reply(numbered(FRESH[3:4]))
    calls = []

    def answer(body):
        if system_of(body) == prompts.SELF_INSTRUCT_SYSTEM:
            calls.append(body)
            return replies.get(len(calls) - 1, later)
        return answer_kinds_and_instances(body)

    model.model = answer
    report = run_self_instruct(backend_for(model), SEEDS, target=3, batch_size=1)
    assert report.kept == 3
    assert report.drops == {"unparseable": 1, "truncated": 1}
    assert report.examples["unparseable"][0].reason == "the reply holds no numbered list of tasks"
    assert report.examples["truncated"][0].text == "Describe the ocean in four"


def test_a_run_checks_new_instructions_against_the_dataset_too(model):
    dataset = "Plan a picnic for six friends in the park in May."
    model.model = lambda body: answer_kinds_and_instances(body) or Reply(numbered(
        ["Plan a picnic for six friends in the park in June.", FRESH[1]]))
    report = run_self_instruct(backend_for(model), SEEDS, existing=[dataset], target=1, batch_size=1)
    assert (report.kept, report.drops) == (1, {"rouge_l": 1})
    assert report.examples["rouge_l"][0].reason == f"ROUGE-L 0.91 with “{dataset}”"


def fixed_model(body) -> Reply:
    """Two new tasks per prompt, chosen by the prompt, from a long list that does not run out in these tests."""
    answered = answer_kinds_and_instances(body)
    if answered is not None:
        return answered
    rng = random.Random(hashlib.sha256(user_of(body).encode()).hexdigest())
    return Reply(numbered(rng.sample(LONG_FRESH, 2)))


LONG_FRESH = fresh_instructions(250)


def test_the_request_budget_stops_the_run_mid_round(model):
    model.model = fixed_model
    kept = []
    report = run_self_instruct(backend_for(model), SEEDS, target=100, batch_size=2, budget=Budget(requests=13),
                               on_keep=kept.append)
    # Round 1: 2 instruction requests, then 4 kind questions and 4 instance requests; round 2 affords 3 more.
    assert (report.stopped, report.requested, len(model.requests), report.kept) == ("budget", 13, 13, len(kept))
    assert (report.kept, report.drops) == (4, {})


def test_the_token_budget_is_checked_after_each_batch(model):
    model.model = fixed_model
    report = run_self_instruct(backend_for(model), SEEDS, target=100, batch_size=2, budget=Budget(tokens=1))
    assert (report.stopped, report.requested, report.kept) == ("budget", 2, 0)


def test_a_resumed_run_replays_the_cache_and_writes_only_what_is_new(model):
    model.model = fixed_model
    backend = backend_for(model)
    whole = []
    full = run_self_instruct(backend, SEEDS, target=9, batch_size=2, seed=4, on_keep=whole.append, cache=MemoryCache())

    model.reset()
    cache, stop, first = MemoryCache(), threading.Event(), []
    stopped = run_self_instruct(backend, SEEDS, target=9, batch_size=2, seed=4, on_keep=first.append, cache=cache,
                                stop=stop, on_progress=lambda kept, target: kept >= 4 and stop.set())
    assert stopped.stopped == "cancelled" and 4 <= stopped.kept < 9
    sent_before = len(model.requests)

    model.reset()
    second = []
    resumed = run_self_instruct(backend, SEEDS, target=9, batch_size=2, seed=4, on_keep=second.append, cache=cache,
                                kept_before=[c.instruction for c in first])
    assert resumed.cached == sent_before == stopped.requested
    assert resumed.requested == len(model.requests) == full.requested - stopped.requested
    assert (resumed.kept, resumed.written) == (9, 9 - len(first))
    assert not {c.instruction for c in first} & {c.instruction for c in second}
    assert first + second == whole


def test_a_backend_that_fails_ends_the_run_with_its_message(model, monkeypatch):
    monkeypatch.delenv("LLM_API_KEY", raising=False)
    model.model = fixed_model
    model.script(Failure(401))
    report = run_self_instruct(backend_for(model), SEEDS, target=5, batch_size=2, retry=NO_RETRY)
    assert report.stopped == "the endpoint wants an API key (401): set LLM_API_KEY"
    assert report.kept == 0

    model.reset()
    model.script(Reply(numbered(FRESH[:2])), Reply(numbered(FRESH[2:4])), Failure(400, "prompt too long"))
    report = run_self_instruct(backend_for(model), SEEDS, target=5, batch_size=2, retry=NO_RETRY, concurrency=1)
    assert report.stopped == "request refused (400): prompt too long"
    assert (report.failed, report.kept) == (1, 0)


# ---- Evol-Instruct ----------------------------------------------------------------------------------------

PARENT = (7, "Write a haiku about rain.", "", "Soft rain on the roof...")


def evolving(body) -> str:
    """The prompt an evolving request shows (after "#The Given Prompt#:" or "#Given Prompt#:")."""
    return user_of(body).split("Prompt#:\n", 1)[1].split("\n#", 1)[0]


def evol_model(evolved: dict[str, str], judged: dict[str, str] | None = None, answers: dict[str, str] | None = None):
    """Evolves each parent to evolved[parent], judges "Not Equal" unless told, answers with a short poem."""
    def answer(body):
        text = user_of(body)
        if text.startswith("I want you act as a Prompt"):
            parent = evolving(body)
            return Reply(evolved.get(parent, f"{parent} Use exactly seventeen syllables."))
        if text.startswith("Here are two Instructions"):
            second = text.split("The Second Prompt: ", 1)[1].split("\nYour Judgement", 1)[0]
            return Reply((judged or {}).get(second, "Not Equal"))
        return Reply((answers or {}).get(text, "Grey clouds gather low, rain taps on the window."))
    return answer


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_sends_wizardlms_prompt(model, operation):
    model.model = evol_model({})
    parent = (7, "Write a haiku about rain.", "Mood: calm", "")
    kept = []
    report = run_evol_instruct(backend_for(model), [parent], operations=[operation], on_keep=kept.append)
    sent = user_of(model.requests[0])
    assert sent == prompts.evolve_prompt(operation, "Write a haiku about rain.\n\nInput:\nMood: calm")
    if operation == "breadth":
        assert sent.startswith("I want you act as a Prompt Creator.\nYour goal is to draw inspiration")
        assert sent.endswith("#Given Prompt#:\nWrite a haiku about rain.\n\nInput:\nMood: calm\n#Created Prompt#:\n")
    else:
        assert sent.startswith("I want you act as a Prompt Rewriter.\n")
        assert f"using the following method:\n{prompts.DEPTH_METHODS[operation]}\n" in sent
    assert report.kept == 1 and (kept[0].operation, kept[0].parent_id) == (operation, 7)


def test_complicate_input_is_only_drawn_for_records_with_an_input(model):
    model.model = evol_model({})
    report = run_evol_instruct(backend_for(model), [PARENT] * 3, operations=["complicate_input", "deepen"])
    assert report.kept == 3
    assert all(prompts.DEPTH_METHODS["deepen"] in user_of(b) for b in model.requests if "Prompt#:" in user_of(b))


def test_each_elimination_rule_drops_an_evolved_instruction(model):
    parents = [(1, "Write a haiku about rain.", "", ""), (2, "Name a fruit.", "", ""), (3, "Count to three.", "", ""),
               (4, "Describe a cat.", "", ""), (5, "Prove a theorem.", "", "")]
    model.model = evol_model(
        {"Name a fruit.": "#Rewritten Prompt#: Name a tropical fruit.", "Count to three.": "What is it, and why?",
         "Describe a cat.": "Describe the cat.", "Prove a theorem.": "Prove the Riemann hypothesis in full."},
        judged={"Describe the cat.": "Equal"},
        answers={"Prove the Riemann hypothesis in full.": "I'm sorry, I can't do that."})
    kept = []
    report = run_evol_instruct(backend_for(model), parents, operations=["concretize"], on_keep=kept.append)
    assert report.drops == {"copies_prompt": 1, "only_stop_words": 1, "no_information_gain": 1, "cannot_answer": 1}
    assert {rule: [d.text for d in examples] for rule, examples in report.examples.items()} == {
        "copies_prompt": ["#Rewritten Prompt#: Name a tropical fruit."], "only_stop_words": ["What is it, and why?"],
        "no_information_gain": ["Describe the cat."], "cannot_answer": ["Prove the Riemann hypothesis in full."]}
    assert [(c.instruction, c.parent_id, c.operation) for c in kept] == [
        ("Write a haiku about rain. Use exactly seventeen syllables.", 1, "concretize")]
    assert kept[0].output == "Grey clouds gather low, rain taps on the window."
    # Instructions dropped before judging cost one request; judged ones three (evolve, compare, answer).
    assert report.requested == 2 * 1 + 3 * 3


def test_later_rounds_link_to_the_record_each_one_evolved_from(model):
    model.model = evol_model({})
    ids = iter(range(100, 200))
    kept = []

    def write(candidate):
        kept.append(candidate)
        return next(ids)

    report = run_evol_instruct(backend_for(model), [PARENT, (8, "Name a fruit.", "", "")], rounds=3, on_keep=write,
                               seed=2)
    assert report.kept == 6
    assert [c.parent_id for c in kept] == [7, 8, 100, 101, 102, 103]
    assert kept[2].instruction.startswith(kept[0].instruction)
    methods = {text: op for op, text in prompts.DEPTH_METHODS.items()}
    sent = [b for b in model.requests if "Prompt#:" in user_of(b)]
    for candidate in kept:
        body = next(b for b in sent if evolving(b) == given_prompt(candidate.instruction.rsplit(" Use exactly", 1)[0]))
        text = user_of(body)
        op = "breadth" if "Prompt Creator" in text else methods[text.split("method:\n", 1)[1].split("\n", 1)[0]]
        assert candidate.operation == op


def test_evol_stops_at_its_target(model):
    model.model = evol_model({})
    parents = [(n, f"Write a haiku about rain in month {n}.", "", "") for n in range(5)]
    report = run_evol_instruct(backend_for(model), parents, target=2, batch_size=2)
    assert (report.kept, report.requested) == (2, 2 * 3)


# ---- SNI task expansion -----------------------------------------------------------------------------------

NOT_BAD = "“Not bad” is praise: the review is positive, whatever single negative words it holds."
TASK = TaskDraft(
    name="task_movie_sentiment",
    definition="Classify the sentiment of the movie review as positive or negative.",
    examples=[ExampleDraft("positive", "A delight from start to finish.", "positive", "The reviewer loved it."),
              ExampleDraft("positive", "Two hours I will never get back.", "negative", "The reviewer regrets it."),
              ExampleDraft("negative", "Not bad at all, I was surprised.", "negative", NOT_BAD)],
    instances=[RecordDraft("", "An old favourite, still charming.", ["positive"]),
               RecordDraft("", "Loud, long and empty.", ["negative"]),
               RecordDraft("", "The cast clearly had fun.", ["positive"]),
               RecordDraft("", "I checked my watch twice.", ["negative"])])

ROUND_1 = ["A delight from start to finish.", "An old favourite, still charming.", "Sunny and warm, a joy.",
           "Sunny and warm, a joy.", "Not bad, not bad at all: a fun ride.", "Mediocre."]
ROUND_2 = ["Brilliant, warm, funny.", "Lovely score and cast.", "An instant classic.", "Dull and far too long."]
LABELS = {"Sunny and warm, a joy.": "Positive.", "Not bad, not bad at all: a fun ride.": "negative",
          "Mediocre.": "neutral", "Dull and far too long.": "negative"}


def sni_model(body) -> Reply:
    text = user_of(body)
    if system_of(body) == prompts.SNI_INPUTS_SYSTEM:
        return Reply(json.dumps(ROUND_2 if "Sunny and warm" in text else ROUND_1))
    if system_of(body) == prompts.SNI_OUTPUT_SYSTEM:
        return Reply(LABELS.get(text.rsplit("Input: ", 1)[1].removesuffix("\nOutput:"), "positive"))
    return Reply("Yes" if "Input: Not bad, not bad" in text else "No")


def test_expansion_keeps_new_instances_that_follow_the_sni_rules(model):
    model.model = sni_model
    kept = []
    report = run_expand_task(backend_for(model), TASK, target=4, on_keep=kept.append)
    assert [(c.input, c.output) for c in kept] == [
        ("Sunny and warm, a joy.", "positive"), ("Brilliant, warm, funny.", "positive"),
        ("Lovely score and cast.", "positive"), ("Dull and far too long.", "negative")]
    assert report.drops == {"positive_input": 1, "duplicate_input": 2, "unknown_label": 1, "negative_example": 1,
                            "label_balance": 1}
    reasons = {rule: [(d.reason, d.text) for d in examples] for rule, examples in report.examples.items()}
    assert reasons["negative_example"] == [(NOT_BAD, "Input: Not bad, not bad at all: a fun ride.\nOutput: negative")]
    assert reasons["positive_input"] == [("the input of positive example 1", "A delight from start to finish.")]
    assert reasons["duplicate_input"] == [("the task already has this input", "An old favourite, still charming."),
                                          ("an earlier candidate of this run has this input", "Sunny and warm, a joy.")]
    assert reasons["unknown_label"] == [("“neutral” is not one of the labels: positive, negative",
                                         "Input: Mediocre.\nOutput: neutral")]
    assert reasons["label_balance"] == [("label “positive” already has 3 new instances, its most (1.5x its fair share)",
                                         "Input: An instant classic.\nOutput: positive")]
    assert all(c.operation == "new_instance" and c.is_classification for c in kept)
    assert kept[0].instruction == TASK.definition and len(kept[0].cache_keys) == 3


def test_the_rubric_request_shows_the_negative_example_and_its_explanation(model):
    model.model = sni_model
    run_expand_task(backend_for(model), TASK, target=1)
    rubric = next(b for b in model.requests if system_of(b) == prompts.SNI_RUBRIC_SYSTEM)
    assert ("A negative example shows this mistake:\nInput: Not bad at all, I was surprised.\nOutput: negative\n"
            f"Why it is wrong: {NOT_BAD}\n\nNew instance:\nInput: Sunny and warm, a joy.\nOutput: positive"
            ) in user_of(rubric)
    inputs = next(b for b in model.requests if system_of(b) == prompts.SNI_INPUTS_SYSTEM)
    assert "Spread the new inputs evenly over the labels: positive, negative." in user_of(inputs)


def test_label_balance_allows_one_and_a_half_times_a_fair_share():
    assert (label_cap(4, ["a", "b"]), label_cap(10, ["a", "b"]), label_cap(10, ["a", "b", "c"])) == (3, 8, 5)


def test_an_expansion_that_gets_only_known_inputs_stops_and_says_so(model):
    model.model = lambda body: Reply(json.dumps(["Loud, long and empty.", "A delight from start to finish."]))
    report = run_expand_task(backend_for(model), TASK, target=3)
    assert (report.stopped, report.kept, report.requested) == ("no new candidates", 0, 3)
    assert report.drops == {"duplicate_input": 3, "positive_input": 3}


# ---- against a real server --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.mark.slow
def test_a_short_self_instruct_run_against_transformers_serve_adds_up(tiny_model_dir, tmp_path):
    with served_tiny_model(tiny_model_dir, tmp_path / "serve.log") as url:
        from curation.drafting import Sampling
        from curation.llm.errors import EmptyReply

        inner = make_backend("openai", model=str(tiny_model_dir), base_url=url, timeout=60)
        replies = []

        class Recording:
            identity = inner.identity

            def complete(self, request):
                try:
                    reply = inner.complete(request)
                except EmptyReply:
                    replies.append((request, ""))
                    raise
                replies.append((request, reply.text))
                return reply

        kept = []
        report = run_self_instruct(Recording(), SEEDS, target=100, batch_size=2, on_keep=kept.append, concurrency=2,
                                   sampling=Sampling(temperature=1.0, max_tokens=48), budget=Budget(requests=12))
        asked = [text for r, text in replies if r.messages[0]["content"] == prompts.SELF_INSTRUCT_SYSTEM]
        assert report.stopped in (None, "budget", "no new candidates")
        assert report.requested == len(replies) <= 12 and report.failed == 0
        assert report.kept == report.written == len(kept)
        if report.stopped != "budget":  # a budget cut can leave accepted instructions without an instance
            assert report.kept + report.dropped == sum(len(parse_instructions(text)) or 1 for text in asked)
        assert report.prompt_tokens > 0 and report.completion_tokens > 0

