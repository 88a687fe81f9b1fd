"""The words the generation pipelines say to the model, and the list parser their replies share.

Self-Instruct's requirements follow Alpaca's prompt.txt (Taori et al. 2023) and its classification question and
output-first instance order follow Wang et al. (2022); the Evol-Instruct texts are WizardLM's own evolving and
elimination prompts (Xu et al. 2023, Evol_Instruct/depth.py and breadth.py, and the paper's appendix), kept as
close to their wording as a chat model allows, because the method is defined by them. Bump PROMPTS_VERSION when
any text here changes (the cache keys change with the words anyway).
"""
from __future__ import annotations

import json
import re

PROMPTS_VERSION = 1

# ---- Self-Instruct ----------------------------------------------------------------------------------------

SELF_INSTRUCT_SYSTEM = (
    "You write task instructions for training a language model to follow instructions. Requirements:\n"
    "1. Do not repeat the verb from one instruction to the next: maximize diversity.\n"
    "2. Vary the language: combine questions with imperative instructions.\n"
    "3. Vary the type of task: open-ended generation, classification, editing, rewriting, reasoning, and so on.\n"
    "4. A language model must be able to complete the instruction in text: no visual or audio output, and no "
    "actions in the world (such as setting a reminder).\n"
    "5. Write in English, one or two sentences per instruction.\n"
    "Reply with the numbered list only, one instruction per line.")


def instructions_prompt(instructions: list[str], count: int) -> str:
    """The user message that shows `instructions` as a numbered list and asks for `count` more."""
    shown = "\n".join(f"{n}. {' '.join(text.split()).rstrip(':')}" for n, text in enumerate(instructions, start=1))
    first = len(instructions) + 1
    return (f"Come up with a series of tasks:\n{shown}\n\n"
            f"Continue the list with {count} new tasks, numbered {first} to {first + count - 1}.")


CLASSIFY_SYSTEM = "You sort task instructions by kind. Answer Yes or No only."


def classify_prompt(instruction: str) -> str:
    return (f"Task: {instruction}\n"
            "Can this task be regarded as a classification task with finite output labels? Answer Yes or No.")


INSTANCE_SYSTEM = "You write one example of a task for an instruction-tuning dataset: realistic, specific and correct."
NO_INPUT = "<noinput>"


def input_first_prompt(instruction: str) -> str:
    """Generation tasks: the input first (realistic data, no placeholders), then the output that answers it."""
    return (f"Task: {instruction}\n\n"
            "Write one example of this task. First its input: a specific, realistic input of at most 100 words, "
            f"or {NO_INPUT} when the task needs none. Then the output: the correct response to the task and the "
            "input. Reply in exactly this form:\nInput: <the input>\nOutput: <the output>")


def output_first_prompt(instruction: str) -> str:
    """Classification tasks: a label first, then an input that has it (else the inputs lean to one label)."""
    return (f"Task: {instruction}\n\n"
            "This is a classification task. First choose one of its possible class labels, then write a specific, "
            "realistic input (at most 100 words) whose correct label is the one you chose. Reply in exactly this "
            "form:\nOutput: <the class label>\nInput: <the input>")


# ---- Evol-Instruct ----------------------------------------------------------------------------------------

DEPTH_BASE = (
    "I want you act as a Prompt Rewriter.\n"
    "Your objective is to rewrite a given prompt into a more complex version to make those famous AI systems "
    "(e.g., chatgpt and GPT4) a bit harder to handle.\n"
    "But the rewritten prompt must be reasonable and must be understood and responded by humans.\n"
    "Your rewriting cannot omit the non-text parts such as the table and code in #The Given Prompt#:. Also, please "
    "do not omit the input in #The Given Prompt#.\n"
    "You SHOULD complicate the given prompt using the following method:\n"
    "{method}\n"
    "You should try your best not to make the #Rewritten Prompt# become verbose, #Rewritten Prompt# can only add "
    "10 to 20 words into #The Given Prompt#.\n"
    "'#The Given Prompt#', '#Rewritten Prompt#', 'given prompt' and 'rewritten prompt' are not allowed to appear "
    "in #Rewritten Prompt#\n"
    "#The Given Prompt#:\n{prompt}\n"
    "#Rewritten Prompt#:\n")

DEPTH_METHODS = {
    "add_constraints": "Please add one more constraints/requirements into #The Given Prompt#",
    "deepen": "If #The Given Prompt# contains inquiries about certain issues, the depth and breadth of the inquiry "
              "can be increased.",
    "concretize": "Please replace general concepts with more specific concepts.",
    "reasoning": "If #The Given Prompt# can be solved with just a few simple thinking processes, you can rewrite it "
                 "to explicitly request multiple-step reasoning.",
    # WizardLM's repository has no text for this one; the paper complicates the input with tables and code.
    "complicate_input": "Please make the input in #The Given Prompt# more complex, for example with more data, "
                        "a table, code or a longer passage, while the task itself stays the same.",
}

BREADTH_BASE = (
    "I want you act as a Prompt Creator.\n"
    "Your goal is to draw inspiration from the #Given Prompt# to create a brand new prompt.\n"
    "This new prompt should belong to the same domain as the #Given Prompt# but be even more rare.\n"
    "The LENGTH and complexity of the #Created Prompt# should be similar to that of the #Given Prompt#.\n"
    "The #Created Prompt# must be reasonable and must be understood and responded by humans.\n"
    "'#Given Prompt#', '#Created Prompt#', 'given prompt' and 'created prompt' are not allowed to appear in "
    "#Created Prompt#\n"
    "#Given Prompt#:\n{prompt}\n"
    "#Created Prompt#:\n")

EQUAL_PROMPT = (
    "Here are two Instructions to ChatGPT AI, do you think they are equal to each other, which meet the following "
    "requirements:\n"
    "1. They have same constraints and requirments.\n"
    "2. They have same depth and breadth of the inquiry.\n"
    "The First Prompt: {first}\n"
    "The Second Prompt: {second}\n"
    "Your Judgement (Just answer: Equal or Not Equal. No need to explain the reason.):")


def evolve_prompt(operation: str, prompt: str) -> str:
    """WizardLM's evolving prompt for `operation` (an in-depth method, or breadth) applied to `prompt`."""
    if operation == "breadth":
        return BREADTH_BASE.format(prompt=prompt)
    return DEPTH_BASE.format(method=DEPTH_METHODS[operation], prompt=prompt)


# ---- SNI task expansion -------------------------------------------------------------------------------------

SNI_INPUTS_SYSTEM = ("You write new instance inputs for a task of Super-NaturalInstructions. Follow the definition; "
                     "make each input realistic and different from the others and from the inputs shown. Reply "
                     "with a JSON array of strings only.")
SNI_OUTPUT_SYSTEM = ("You solve one instance of a task of Super-NaturalInstructions, as correctly as its positive "
                     "examples do. Reply with the output only.")
SNI_RUBRIC_SYSTEM = ("You check a new instance of a task against a known mistake. Answer Yes if the new instance "
                     "makes the same mistake, else No.")


def example_lines(examples: list[tuple[str, str, str]]) -> str:
    return "\n".join(f"- Input: {i}\n  Output: {o}" + (f"\n  Explanation: {e}" if e else "") for i, o, e in examples)


# ---- replies ------------------------------------------------------------------------------------------------

_ITEM = re.compile(r"^\s*(?:(?:task\s*)?\d+\s*[.):]|[-*\u2022])\s+(.*)$", re.IGNORECASE)
_WRAPPERS = (("**", "**"), ('"', '"'), ("\u201c", "\u201d"))


def numbered_items(text: str) -> list[str]:
    """The items of a numbered (or bulleted) list in `text`, continuation lines joined; [] when there is none."""
    items: list[list[str]] = []
    for line in (text or "").splitlines():
        match = _ITEM.match(line)
        if match:
            items.append([match.group(1)])
        elif items and line.strip():
            items[-1].append(line.strip())
    cleaned = []
    for parts in items:
        item = " ".join(" ".join(parts).split())
        for start, end in _WRAPPERS:
            if len(item) > len(start) + len(end) and item.startswith(start) and item.endswith(end):
                item = item[len(start):-len(end)].strip()
        cleaned.append(item)
    return cleaned


def json_strings(text: str) -> list[str] | None:
    """The strings of the first JSON array in `text` (objects give their "input"); None when there is no array."""
    start, end = (text or "").find("["), (text or "").rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        items = json.loads(text[start:end + 1])
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    values = [item.get("input") if isinstance(item, dict) else item for item in items]
    return [str(v).strip() for v in values if isinstance(v, (str, int, float)) and str(v).strip()]


def yes(text: str) -> bool:
    """True when a judge's reply starts with yes (any case, markdown or punctuation around it)."""
    words = re.findall(r"[a-z]+", (text or "").lower())
    return bool(words) and words[0] == "yes"
