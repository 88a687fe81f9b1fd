"""FLAN's (input, target) patterns, read from its templates.py without running it, as PromptSource templates.

FLAN writes `str.format` patterns per task, e.g. ("{premise}\\n\\nCan we infer ...?\\n\\n{options_}",
"{answer}"); its preprocessors fill `{options_}` with "OPTIONS:\\n- yes\\n- no" and `{answer}` with the
option the label names. Converted, `{options_}` lists the template's answer choices that way and
`{answer}` is `answer_choices[label]`, so one renderer (and one sandbox) serves both. Patterns whose
target is not `{answer}` (FLAN's inverted ones: "Generate a context and a hypothesis.") are marked as
not the original task.
"""
from __future__ import annotations

import ast
import string
from pathlib import Path

from curation.templates.model import SEPARATOR, Template, TemplateError

OPTIONS = 'OPTIONS:\n- {{ answer_choices | join("\\n- ") }}'
ANSWER = "{{ answer_choices[label] }}"
_JINJA_OPENERS = ("{{", "{%", "{#")


def read_flan_patterns(text: str, *, origin: str = "templates.py") -> dict[str, list[tuple[str, str]]]:
    """{task: [(input pattern, target pattern), ...]} of the literal `PATTERNS = {...}` in FLAN's templates.py.

    The file is parsed, never run; `PATTERNS["a"] = PATTERNS["b"]` aliases are followed.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise TemplateError(f"{origin}, line {error.lineno}: not Python ({error.msg})") from None
    patterns: dict | None = None
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "PATTERNS":
            try:
                patterns = ast.literal_eval(node.value)
            except ValueError:
                raise TemplateError(f"{origin}, line {node.lineno}: PATTERNS is not a literal dict") from None
        elif (patterns is not None and isinstance(target, ast.Subscript) and _is_patterns(target.value)
              and isinstance(node.value, ast.Subscript) and _is_patterns(node.value.value)):
            alias, original = _constant(target.slice), _constant(node.value.slice)
            if isinstance(alias, str) and original in patterns:
                patterns[alias] = patterns[original]
    if not isinstance(patterns, dict):
        raise TemplateError(f"{origin}: no PATTERNS = {{...}} found (FLAN's templates.py has one)")
    return patterns


def _is_patterns(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "PATTERNS"


def _constant(node: ast.AST):
    return node.value if isinstance(node, ast.Constant) else None


def pattern_to_jinja(pattern: str) -> str:
    """A FLAN str.format pattern as Jinja: {field} -> {{ field }}, {options_} and {answer} as FLAN fills them."""
    out = []
    try:
        pieces = list(string.Formatter().parse(pattern))
    except ValueError as error:
        raise TemplateError(f"the FLAN pattern {pattern[:60]!r} is not a format string ({error})") from None
    for literal, name, spec, conversion in pieces:
        if literal:
            if SEPARATOR in literal:
                raise TemplateError(f"the FLAN pattern {pattern[:60]!r} holds {SEPARATOR}")
            out.append(f"{{% raw %}}{literal}{{% endraw %}}" if any(o in literal for o in _JINJA_OPENERS) else literal)
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise TemplateError(f"the FLAN pattern {pattern[:60]!r} has the placeholder {{{name}}}, "
                                "which is not a plain field name")
        out.append(OPTIONS if name == "options_" else ANSWER if name == "answer" else f"{{{{ {name} }}}}")
    return "".join(out)


def _choice_text(option: str) -> str:
    return f"{{% raw %}}{option}{{% endraw %}}" if any(o in option for o in _JINJA_OPENERS) else option


def flan_templates(patterns: dict[str, list[tuple[str, str]]], task: str, *, options: list[str] | None = None,
                   collection: str | None = None) -> list[Template]:
    """Templates of one FLAN task, named "<task> 1", "<task> 2"...; `options` are its answer choices in label order."""
    if task not in patterns:
        close = sorted(name for name in patterns if task.lower() in name.lower())[:5]
        raise TemplateError(f"FLAN has no task {task!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    choices = " ||| ".join(_choice_text(o.strip()) for o in options) if options else None
    templates = []
    for number, entry in enumerate(patterns[task], start=1):
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2 and all(isinstance(p, str) for p in entry)):
            raise TemplateError(f"FLAN task {task!r}, pattern {number} is not an (input, target) pair")
        prompt, target = entry
        original = "{answer}" in target
        templates.append(Template(
            name=f"{task} {number}", jinja=f"{pattern_to_jinja(prompt)} {SEPARATOR} {pattern_to_jinja(target)}",
            answer_choices=choices, source="flan", collection=collection or f"flan/{task}",
            id=f"flan:{task}:{number}", original_task=original, choices_in_prompt="{options_}" in prompt,
            metrics=("Accuracy",) if original and options else (), languages=("en",),
            reference="FLAN (google-research/FLAN templates.py)",
        ))
    return templates


def load_flan(path: str | Path, task: str, *, options: list[str] | None = None,
              collection: str | None = None) -> list[Template]:
    """The templates of one task of a FLAN templates.py file (see flan_templates)."""
    path = Path(path)
    return flan_templates(read_flan_patterns(path.read_text(encoding="utf-8"), origin=path.name), task,
                          options=options, collection=collection)
