"""Templates compiled once and rendered row after row in a sandbox with strict names.

jinja2's ImmutableSandboxedEnvironment keeps a template away from Python: no `_` attributes, no
`__class__` walks, no mutating a list, no huge ranges. StrictUndefined makes a template that names a
missing field fail with the field's name; PromptSource's own environment renders a blank there instead.
"""
from __future__ import annotations

import random
import re
import traceback
from contextvars import ContextVar
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from curation.templates.model import SEPARATOR, Template, TemplateError

MAX_TEXT = 1_000_000  # characters one render may produce: a template cannot fill the memory
MAX_EXPONENT = 1000
MAX_RANGE = 100_000  # range() items one render may ask for, all its loops together (nested loops included)
# Row values holding ||| would split the render in the wrong place: PromptSource swaps them out meanwhile.
_PIPE_STANDIN = "\ue000\ue001\ue002"
MISSING_NAME = re.compile(r"^'([^']+)' is undefined$")


class AnswerChoices(list):
    """The choices of one row, which say in words when an index is out of range."""


class ChoiceOutOfRange(LookupError):
    def __init__(self, index: Any, choices: AnswerChoices):
        self.index, self.choices = index, choices
        super().__init__(index)


@pass_context
def _choice(context, items):
    # PromptSource's `choice` is random.choice; here it is seeded by the row, so a rerun renders the same text.
    return random.Random(context.get("_row_number", 0)).choice(list(items))


_range_left: ContextVar[int] = ContextVar("range_left", default=MAX_RANGE)


def _range(*args):
    # jinja2's own range caps one call; nested loops multiply, so one render shares a single allowance.
    numbers = range(*args)
    left = _range_left.get() - len(numbers)
    if left < 0:
        raise SecurityError(f"ranges of more than {MAX_RANGE:,} items in one render")
    _range_left.set(left)
    return numbers


def fresh_allowance() -> None:
    """Give the render about to start its own range() allowance."""
    _range_left.set(MAX_RANGE)


def _most_frequent(items):
    counts: dict = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    top = max(counts.values(), default=0)
    return [item for item, count in counts.items() if count == top]


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and right > MAX_EXPONENT:
            raise SecurityError(f"an exponent above {MAX_EXPONENT}")
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(times, int) and len(sized) * times > MAX_TEXT:
                    raise SecurityError(f"a repetition longer than {MAX_TEXT:,} characters")
        return super().call_binop(context, operator, left, right)

    def getitem(self, obj, argument):
        if isinstance(obj, AnswerChoices) and not isinstance(argument, slice):
            if isinstance(argument, bool) or not isinstance(argument, int) or not 0 <= argument < len(obj):
                raise ChoiceOutOfRange(argument, obj)
        return super().getitem(obj, argument)


ENVIRONMENT = _Sandbox(undefined=StrictUndefined, autoescape=False)
ENVIRONMENT.globals["zip"] = zip  # PromptSource's environment offers zip(); it is harmless here
ENVIRONMENT.globals["range"] = _range
del ENVIRONMENT.globals["lipsum"]  # lipsum(n=10**6) writes text without end; no template needs it
ENVIRONMENT.filters.update(choice=_choice, most_frequent=_most_frequent, highlight=lambda text: text)
_HELPERS = frozenset(ENVIRONMENT.globals) | {"answer_choices", "_row_number"}


def forbidden_name(tree: nodes.Template) -> tuple[str, int] | None:
    """The first `_name` the template reaches for (attribute or item) and its line, or None."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const):
            name = node.args[0].value
        if isinstance(name, str) and name.startswith("_"):
            return name, node.lineno
    return None


def _compile(template: Template, source: str, what: str):
    """(compiled, the fields it names) of one Jinja text; TemplateError naming the line of a fault."""
    try:
        tree = ENVIRONMENT.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateError(f"template {template.label}{what}, line {error.lineno}: {error.message}") from None
    if found := forbidden_name(tree):
        raise TemplateError(f"template {template.label}{what}, line {found[1]}: '{found[0]}' is not allowed "
                            "(a template reads fields, never Python's internals)")
    return ENVIRONMENT.from_string(tree), frozenset(meta.find_undeclared_variables(tree)) - _HELPERS


def _template_line(error: BaseException) -> int | None:
    lines = [line for frame, line in traceback.walk_tb(error.__traceback__) if frame.f_code.co_filename == "<template>"]
    return lines[-1] if lines else None


class CompiledTemplate:
    """A template ready to render rows: `fields` are the row fields it names."""

    def __init__(self, template: Template):
        self.template = template
        self._main, fields = _compile(template, template.jinja, "")
        if SEPARATOR not in template.jinja:
            raise TemplateError(f"template {template.label} has no {SEPARATOR} between its prompt and its target")
        self._choices = None
        self._fixed_choices: AnswerChoices | None = None
        if template.answer_choices is not None and template.answer_choices.strip():
            self._choices, choice_fields = _compile(template, template.answer_choices, "'s answer choices")
            fields |= choice_fields
            if not choice_fields:  # the same for every row: rendered once
                self._fixed_choices = self._render_choices({}, 0)
        elif "answer_choices" in meta.find_undeclared_variables(ENVIRONMENT.parse(template.jinja)):
            raise TemplateError(f"template {template.label} uses answer_choices but has none")
        self.fields = fields

    def _fail(self, error: BaseException, row_number: int, row: Mapping, what: str = "") -> TemplateError:
        line = _template_line(error)
        where = f"template {self.template.label}{what}" + (f", line {line}" if line else "") + f", row {row_number}"
        if isinstance(error, ChoiceOutOfRange):
            shown = ", ".join(error.choices) or "none"
            if not isinstance(error.index, int) or isinstance(error.index, bool):
                return TemplateError(f"{where}: answer_choices is indexed by {error.index!r}, which is not a "
                                     "number; map the label field's values to ids")
            return TemplateError(f"{where}: answer choice {error.index} is out of range; the template has "
                                 f"{len(error.choices)} answer choices ({shown}), numbered from 0")
        if isinstance(error, SecurityError):
            return TemplateError(f"{where}: the sandbox refused {error} (a template reads fields, never Python)")
        if isinstance(error, UndefinedError):
            missing = MISSING_NAME.match(str(error))
            if missing:
                fields = ", ".join(sorted(k for k, v in row.items() if v is not None)) or "none"
                return TemplateError(f"{where}: the field '{missing.group(1)}' is missing from the row "
                                     f"(it has {fields}); map it to one of the source's columns")
            return TemplateError(f"{where}: {error}")
        return TemplateError(f"{where}: {type(error).__name__}: {error}")

    def _render_choices(self, context: dict, row_number: int) -> AnswerChoices:
        try:
            text = self._choices.render(context)
        except Exception as error:  # any fault in user Jinja is the template's, told in words
            raise self._fail(error, row_number, context, "'s answer choices") from None
        return AnswerChoices(part.strip().replace(_PIPE_STANDIN, SEPARATOR) for part in text.split(SEPARATOR))

    def choices(self, row: Mapping, row_number: int = 0) -> list[str]:
        """The answer choices on this row ([] when the template has none)."""
        if self._choices is None:
            return []
        return list(self._fixed_choices if self._fixed_choices is not None
                    else self._render_choices(_context(row, row_number), row_number))

    def render(self, row: Mapping, row_number: int) -> tuple[str, str] | None:
        """(prompt, target) of the row (counted from 1); None where the template renders nothing for it.

        Nothing means an `{% if %}` that does not hold for the row (COPA's cause/effect templates, TREC's
        per-class ones) or an empty target (PromptSource's unlabelled rows, label -1): no record to make.
        """
        context = _context(row, row_number)
        fresh_allowance()
        if "answer_choices" in row:
            raise TemplateError(f"row {row_number} has a field named answer_choices, a name templates reserve")
        if self._choices is not None:
            context["answer_choices"] = (self._fixed_choices if self._fixed_choices is not None
                                         else self._render_choices(context, row_number))
        try:
            text = self._main.render(context)
        except Exception as error:  # any fault in user Jinja is the template's, told in words
            raise self._fail(error, row_number, row) from None
        if len(text) > MAX_TEXT:
            raise TemplateError(f"template {self.template.label}, row {row_number}: the text is longer than "
                                f"{MAX_TEXT:,} characters")
        pieces = text.split(SEPARATOR)
        if len(pieces) == 1:
            if not text.strip():
                return None
            raise TemplateError(f"template {self.template.label}, row {row_number}: the text has no {SEPARATOR}, "
                                "so there is no target (keep the ||| outside any {% if %})")
        if len(pieces) > 2:
            raise TemplateError(f"template {self.template.label}, row {row_number}: the text has "
                                f"{len(pieces) - 1} {SEPARATOR}; one separates the prompt from the target")
        prompt, target = (piece.strip().replace(_PIPE_STANDIN, SEPARATOR) for piece in pieces)
        return (prompt, target) if prompt and target else None


def _context(row: Mapping, row_number: int) -> dict:
    # A null value is a missing value: the template fails on its name rather than print "None".
    context = {key: value.replace(SEPARATOR, _PIPE_STANDIN) if isinstance(value, str) and SEPARATOR in value
               else value for key, value in row.items() if value is not None}
    context["_row_number"] = row_number
    return context


def compile_template(template: Template) -> CompiledTemplate:
    """The template compiled; TemplateError naming the line of a syntax error or a forbidden name."""
    return CompiledTemplate(template)
