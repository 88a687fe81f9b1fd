"""Templates over labelled datasets: PromptSource and FLAN read as published, rendered in a strict sandbox,
mapped onto real rows, applied into a dataset with provenance, or built into an SNI task; every bad input is
refused in words with the database unchanged."""
from __future__ import annotations

import pytest

from curation.templates import (FieldMapping, MappingError, Outcome, Source, SourceError, Template, TemplateError,
                                compile_template, flan_templates, load_flan, load_promptsource, parse_fields,
                                parse_labels, read_flan_patterns, read_promptsource, read_rows, read_source,
                                render_rows, sample_rows, suggest_ids)
from tests.conftest import requires_shared_data

RTE_ROW = {"premise": "The cat sat on the mat.", "hypothesis": "A cat is sitting.", "label": 0}
YES_NO = "Yes ||| No"


def template(jinja: str, choices: str | None = YES_NO, name: str = "t") -> Template:
    return Template(name=name, jinja=jinja, answer_choices=choices, collection="test")


def render(jinja: str, row: dict, choices: str | None = YES_NO, number: int = 1):
    return compile_template(template(jinja, choices)).render(row, number)


# ---- the renderer ------------------------------------------------------------------------------------

def test_a_template_splits_into_prompt_and_target_at_the_separator():
    assert render('{{premise}} Is "{{hypothesis}}" true? ||| {{ answer_choices[label] }}', RTE_ROW) == (
        'The cat sat on the mat. Is "A cat is sitting." true?', "Yes")


def test_a_missing_field_fails_with_its_name_where_promptsource_would_print_a_blank():
    with pytest.raises(TemplateError) as refused:
        render("{{ premise }}\nIs {{ hypotesis }} true? ||| {{ answer_choices[label] }}", RTE_ROW, number=4)
    assert str(refused.value) == ("template “t” (test), line 2, row 4: the field 'hypotesis' is missing from the row "
                                  "(it has hypothesis, label, premise); map it to one of the source's columns")


def test_a_null_value_is_a_missing_one_not_the_word_none():
    with pytest.raises(TemplateError, match="the field 'hypothesis' is missing"):
        render("{{ premise }} {{ hypothesis }} ||| x", {**RTE_ROW, "hypothesis": None})


def test_a_syntax_error_names_its_line():
    with pytest.raises(TemplateError) as refused:
        compile_template(template("{{ premise }}\n{% if label == 0 %}\n{{ hypothesis } ||| x"))
    assert str(refused.value) == "template “t” (test), line 3: unexpected '}'"


@pytest.mark.parametrize("jinja", ["{{ ''.__class__ }} ||| x", "ok\n{{ premise.__class__.__mro__ }} ||| x",
                                   "{{ premise|attr('__class__') }} ||| x", "{{ lipsum.__globals__ }} ||| x",
                                   "{{ premise['__class__'] }} ||| x"])
def test_a_template_cannot_reach_python(jinja):
    with pytest.raises(TemplateError) as refused:
        compile_template(template(jinja))
    line = jinja.count("\n", 0, jinja.index("__")) + 1
    assert f"line {line}: '__" in str(refused.value) and "is not allowed" in str(refused.value)


def test_a_forbidden_name_that_comes_from_the_data_is_refused_by_the_sandbox():
    with pytest.raises(TemplateError, match=r"row 2: the sandbox refused access to attribute '__class__'"):
        render("{{ premise[key] }} ||| x", {"premise": "p", "key": "__class__"}, number=2)


@pytest.mark.parametrize("jinja, why", [
    ("{{ 'a' * 10000000 }} ||| x", "a repetition longer than 1,000,000 characters"),
    ("{{ 10 ** 100000 }} ||| x", "an exponent above 1000"),
    ("{{ range(10000000)|list|length }} ||| x", "ranges of more than 100,000 items in one render"),
    ("{% for i in range(1000) %}{% for j in range(1000) %}.{% endfor %}{% endfor %} ||| x", "ranges of more than"),
    ("{{ lipsum(n=1000000) }} ||| x", "the field 'lipsum' is missing"),
    ("{% set l = [1] %}{{ l.append(2) }} ||| x", "access to attribute 'append'"),
])
def test_the_sandbox_refuses_what_would_exhaust_the_machine_or_change_data(jinja, why):
    with pytest.raises(TemplateError, match=why):
        render(jinja, {})


def test_an_answer_choice_out_of_range_says_how_many_there_are():
    with pytest.raises(TemplateError) as refused:
        render("{{ premise }} ||| {{ answer_choices[label] }}", {**RTE_ROW, "label": 2}, number=9)
    assert str(refused.value) == ("template “t” (test), line 1, row 9: answer choice 2 is out of range; the template "
                                  "has 2 answer choices (Yes, No), numbered from 0")


def test_a_text_label_indexing_the_choices_asks_for_a_label_mapping():
    with pytest.raises(TemplateError, match="indexed by 'entailment', which is not a number; map the label"):
        render("{{ premise }} ||| {{ answer_choices[label] }}", {**RTE_ROW, "label": "entailment"})


def test_an_unlabelled_row_or_an_if_that_does_not_hold_renders_nothing():
    jinja = "{% if question == 'cause' %}{{ premise }} why? ||| {% if label != -1 %}{{ answer_choices[label] }}{% endif %}{% endif %}"
    assert render(jinja, {"premise": "p", "question": "effect", "label": 0}) is None
    assert render(jinja, {"premise": "p", "question": "cause", "label": -1}) is None
    assert render(jinja, {"premise": "p", "question": "cause", "label": 1}) == ("p why?", "No")


def test_a_separator_inside_a_row_value_stays_in_the_text():
    assert render("{{ premise }} ||| {{ answer_choices[label] }}", {**RTE_ROW, "premise": "a ||| b"}) == ("a ||| b", "Yes")


def test_answer_choices_can_come_from_the_row():
    row = {"premise": "It rained.", "choice1": "Wet streets.", "choice2": "Dry streets.", "label": 0}
    compiled = compile_template(template("{{ premise }} ||| {{ answer_choices[label] }}", "{{choice1}} ||| {{choice2}}"))
    assert compiled.fields == {"premise", "label", "choice1", "choice2"}
    assert compiled.choices(row) == ["Wet streets.", "Dry streets."]
    assert compiled.render(row, 1) == ("It rained.", "Wet streets.")


@pytest.mark.parametrize("jinja, choices, why", [
    ("{{ premise }}", None, "has no ||| between its prompt and its target"),
    ("{{ premise }} ||| {{ answer_choices[label] }}", None, "uses answer_choices but has none"),
])
def test_a_template_that_cannot_make_a_record_is_refused_when_compiled(jinja, choices, why):
    with pytest.raises(TemplateError, match=why):
        compile_template(template(jinja, choices))


def test_a_template_whose_separator_sits_in_an_if_fails_on_the_row_it_loses_it():
    with pytest.raises(TemplateError, match="row 1: the text has no |||"):
        render("{{ premise }}{% if label == 1 %} ||| yes{% endif %}", RTE_ROW)


# ---- reading templates ---------------------------------------------------------------------------------

PROMPTSOURCE_YAML = """dataset: super_glue
subset: rte
templates:
  4163e6f1-1a83-4c73-b867-02eb7ac80316: !Template
    answer_choices: Yes ||| No
    id: 4163e6f1-1a83-4c73-b867-02eb7ac80316
    jinja: Suppose {{premise}} Can we infer that "{{hypothesis}}"? Yes or no? |||
      {% if label != -1 %}{{ answer_choices[label] }}{% endif %}
    metadata: !TemplateMetadata
      choices_in_prompt: true
      languages:
      - en
      metrics:
      - Accuracy
      original_task: true
    name: can we infer
    reference: Webson & Pavlick 2021
"""


def test_a_promptsource_file_is_read_as_published():
    [read] = read_promptsource(PROMPTSOURCE_YAML)
    assert read == Template(name="can we infer", jinja='Suppose {{premise}} Can we infer that "{{hypothesis}}"? Yes or '
                            "no? ||| {% if label != -1 %}{{ answer_choices[label] }}{% endif %}",
                            answer_choices="Yes ||| No", source="promptsource", collection="super_glue/rte",
                            id="4163e6f1-1a83-4c73-b867-02eb7ac80316", original_task=True, choices_in_prompt=True,
                            metrics=("Accuracy",), languages=("en",), reference="Webson & Pavlick 2021")


def test_a_promptsource_file_runs_no_python_tag():
    with pytest.raises(TemplateError, match="not PromptSource YAML"):
        read_promptsource("templates: !!python/object/apply:os.system ['true']")


def test_flan_patterns_are_read_without_running_the_file():
    text = 'import os\nos.system("false")\nPATTERNS = {"rte": [("{premise}\\n{options_}", "{answer}"), ' \
           '("Write a premise.", "{premise}")]}\nPATTERNS["rte_copy"] = PATTERNS["rte"]\n'
    patterns = read_flan_patterns(text)
    assert patterns["rte_copy"] == patterns["rte"] == [("{premise}\n{options_}", "{answer}"),
                                                       ("Write a premise.", "{premise}")]
    asks, inverted = flan_templates(patterns, "rte", options=["yes", "no"])
    assert (asks.name, asks.original_task, asks.choices_in_prompt) == ("rte 1", True, True)
    assert (inverted.original_task, inverted.choices_in_prompt) == (False, False)
    assert compile_template(asks).render(RTE_ROW, 1) == ("The cat sat on the mat.\nOPTIONS:\n- yes\n- no", "yes")
    assert compile_template(inverted).render(RTE_ROW, 1) == ("Write a premise.", "The cat sat on the mat.")


def test_flan_jinja_look_alikes_stay_text():
    [flan] = flan_templates({"t": [("Say {{hi}} to {name}", "{answer}")]}, "t", options=["{% a %}"])
    assert compile_template(flan).render({"name": "Ann", "label": 0}, 1) == ("Say {hi} to Ann", "{% a %}")


def test_an_unknown_flan_task_names_close_ones():
    with pytest.raises(TemplateError, match=r"FLAN has no task 'rt' \(did you mean rte\?\)"):
        flan_templates({"rte": [], "cb": []}, "rt")


# ---- mappings and sources ------------------------------------------------------------------------------

def test_labels_and_fields_are_written_as_the_cli_takes_them():
    assert parse_labels("0=entailment, 1=not_entailment") == ("label", {"entailment": 0, "not_entailment": 1})
    assert parse_labels("fine_label:32=LOC:city,33=LOC:country") == ("fine_label", {"LOC:city": 32, "LOC:country": 33})
    assert parse_fields(["sentence=text", "text={{ title }} {{ body }}"]) == {
        "sentence": "text", "text": "{{ title }} {{ body }}"}
    with pytest.raises(MappingError, match="a label mapping is id=value"):
        parse_labels("entailment=0")


def test_a_label_the_mapping_lacks_names_the_row_and_the_value():
    rows = [{"premise": "p", "hypothesis": "h", "label": "entailment"}, {"premise": "p", "hypothesis": "h", "label": "neutral"}]
    with pytest.raises(MappingError) as refused:
        list(render_rows(rows, [template("{{ premise }} ||| {{ answer_choices[label] }}")],
                         FieldMapping(labels={"label": {"entailment": 0, "not_entailment": 1}})))
    assert str(refused.value) == ("row 2: the label value 'neutral' has no id in the label mapping "
                                  "(it maps 'entailment', 'not_entailment')")


def test_a_mapping_naming_a_column_the_source_lacks_says_which_it_has():
    with pytest.raises(MappingError, match=r"the field 'sentence' maps to the column 'sentence1', which the source "
                                           r"does not have \(its columns: label, text\)"):
        list(render_rows([{"text": "t", "label": 0}], [template("{{ sentence }} ||| x")],
                         FieldMapping(fields={"sentence": "sentence1"}), columns=["text", "label"]))


def test_a_field_can_be_composed_from_columns_in_the_sandbox():
    rows = [{"class": "3", "title": "Oil up", "description": "Prices rose."}]
    mapping = FieldMapping(fields={"text": "{{ title }} {{ description }}", "label": "class"},
                           labels={"label": {"1": 0, "2": 1, "3": 2, "4": 3}})
    [made] = render_rows(rows, [template("{{ text }} ||| {{ answer_choices[label] }}", "W ||| S ||| B ||| T")], mapping)
    assert (made.prompt, made.target, made.row) == ("Oil up Prices rose.", "B", 1)
    with pytest.raises(MappingError, match="'__class__' is not allowed"):
        list(render_rows(rows, [template("{{ text }} ||| x")], FieldMapping(fields={"text": "{{ title.__class__ }}"})))


def test_label_ids_are_suggested_for_a_person_to_check():
    assert suggest_ids(["1", "0"]) == {"0": 0, "1": 1}
    assert suggest_ids(["no", "Yes"], ["Yes", "No"]) == {"Yes": 0, "no": 1}
    assert suggest_ids(["not_entailment", "entailment"], ["Yes", "No"]) == {"entailment": 0, "not_entailment": 1}


def test_a_source_with_no_rows_is_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(SourceError, match="the source empty.jsonl has no rows: there is nothing to apply"):
        read_source(empty)


def test_sources_are_read_as_tables_lines_or_json(tmp_path):
    (tmp_path / "a.csv").write_text('"3","Oil, up","x"\n', encoding="utf-8")
    (tmp_path / "b.tsv").write_text('text\tlabel\nit \'s "fine" \t1\n', encoding="utf-8")
    (tmp_path / "c.txt").write_text("NUM:dist How far ?\n\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text('{"a": 1}\n[1]\n', encoding="utf-8")
    assert read_rows(tmp_path / "a.csv", columns=["class", "title", "body"]) == [
        {"class": "3", "title": "Oil, up", "body": "x"}]
    assert read_rows(tmp_path / "b.tsv") == [{"text": "it 's \"fine\" ", "label": "1"}]
    assert read_rows(tmp_path / "c.txt") == [{"line": "NUM:dist How far ?"}]
    with pytest.raises(SourceError, match="d.jsonl, line 2: a row is a JSON object, not list"):
        read_rows(tmp_path / "d.jsonl")


def test_one_template_per_row_in_turn_or_drawn_with_a_seed_or_all_of_them():
    rows = [{"n": str(i)} for i in range(6)]
    first, second, third = (template(f"{name} {{{{ n }}}} ||| {name}", None, name) for name in "abc")
    names = lambda how, **kw: [m.template.name for m in render_rows(rows, [first, second, third], FieldMapping(),
                                                                     how=how, **kw)]
    assert names("round_robin") == ["a", "b", "c", "a", "b", "c"]
    assert names("random", seed=7) == names("random", seed=7) != names("random", seed=8)
    assert names("all", cap=2) == ["a", "b", "c", "a", "b", "c"]
    assert sample_rows(277) == [1, 70, 139, 208, 277] and sample_rows(3) == [1, 2, 3]


# ---- the published templates on the published rows -------------------------------------------------------

@requires_shared_data
def test_every_promptsource_template_renders_on_every_row_of_its_dataset_after_the_mapping():
    from tests.template_mappings import FITS

    renders, made_by_fit = 0, {}
    for key, fit in FITS.items():
        templates = load_promptsource(fit.templates_path)
        source = read_source(fit.data_path, columns=list(fit.columns) if fit.columns else None)
        outcome = Outcome()
        made = list(render_rows(source.rows, templates, fit.mapping, how="all", columns=source.columns,
                                outcome=outcome))
        assert outcome.renders == len(templates) * len(source.rows), key
        renders += outcome.renders
        made_by_fit[key] = len(made)
        from curation.templates import RowMapper

        mapper = RowMapper(fit.mapping)
        mapped = [mapper.map(row, n) for n, row in enumerate(source.rows, start=1)]
        for compiled in map(compile_template, templates):
            # No blank where a field was expected: every field a template names has a value on every row.
            for row in mapped:
                assert all(row.get(f) not in (None, "") for f in compiled.fields), (key, compiled.template.name)
        assert all(m.prompt.strip() and m.target.strip() for m in made), key
        # Only templates written for some rows (an {% if %} on the class or on cause/effect) skip any.
        conditional = {t.name for t in templates if t.jinja.lstrip().startswith("{% if")}
        assert set(outcome.nothing) <= conditional, key
    assert renders == 54_970
    assert made_by_fit == {"rte": 2770, "boolq": 20000, "cb": 840, "copa": 1000, "sst2": 4360, "ag_news_csv": 14000,
                           "ag_news": 700, "imdb": 1100, "rotten_tomatoes": 1000, "trec": 4406}


@requires_shared_data
def test_on_the_rows_as_published_only_copa_fits_its_templates():
    from tests.template_mappings import FITS

    fits = []
    for key, fit in FITS.items():
        source = read_source(fit.data_path, columns=list(fit.columns) if fit.columns else None)
        try:
            list(render_rows(source.rows, load_promptsource(fit.templates_path), FieldMapping(), how="all"))
            fits.append(key)
        except TemplateError:
            pass
    assert fits == ["copa"]


@requires_shared_data
def test_flan_v1_and_v2_rte_patterns_render_on_rte_with_flan_options():
    from tests.template_mappings import FITS, FLAN_V1, FLAN_V2

    fit = FITS["rte"]
    source = read_source(fit.data_path)
    for path in (FLAN_V1, FLAN_V2):
        templates = load_flan(path, "rte", options=["yes", "no"])
        assert len(templates) == 10 and [t.original_task for t in templates].count(False) == 1
        made = list(render_rows(source.rows, templates, fit.mapping, how="all"))
        assert len(made) == 2770
        first = made[0]
        assert first.prompt.endswith("OPTIONS:\n- yes\n- no") and first.target == "no"  # row 1 is not_entailment


# ---- the store, apply and SNI tasks through the services -----------------------------------------------------

from curation.services import template_store, template_tasks, templates as template_service  # noqa: E402
from curation.services.annotation import InvalidInput  # noqa: E402
from curation.services.permissions import Actor, PermissionDenied  # noqa: E402
from db import repo  # noqa: E402
from db.models import Record, Role  # noqa: E402
from tests.ui_server import SLOW_LOAD

CURA, ANN = Actor("cura", Role.curator), Actor("ann", Role.annotator)
RTE_ROWS = [
    {"premise": "The cat sat on the mat.", "hypothesis": "A cat is sitting.", "label": "entailment"},
    {"premise": "It rained all day.", "hypothesis": "The streets are dry.", "label": "not_entailment"},
    {"premise": "Ann bought bread.", "hypothesis": "Ann went shopping.", "label": "entailment"},
    {"premise": "The shop was closed.", "hypothesis": "The shop was open.", "label": "not_entailment"},
]
RTE_LABELS = FieldMapping(labels={"label": {"entailment": 0, "not_entailment": 1}})
CAN_WE_INFER = read_promptsource(PROMPTSOURCE_YAML)[0]


def counts(session):
    from db.template_tables import PromptTemplate
    from sqlalchemy import func, select

    return {**repo.table_counts(session),
            "prompt_template": session.execute(select(func.count()).select_from(PromptTemplate)).scalar_one()}


def stored(session, *templates_):
    return template_store.store_templates(session, CURA, list(templates_), reason="test").templates


def test_an_import_is_stored_at_version_1_and_a_changed_template_gets_version_2(session):
    [first] = stored(session, CAN_WE_INFER)
    again = template_store.store_templates(session, CURA, [CAN_WE_INFER], reason="again")
    assert (again.created, again.changed, again.unchanged) == (0, 0, 1)
    from dataclasses import replace

    changed = replace(CAN_WE_INFER, jinja=CAN_WE_INFER.jinja.replace("Suppose", "Assume"))
    [second] = template_store.store_templates(session, CURA, [changed], reason="reworded").templates
    assert (first.version, second.version, second.stored_id) == (1, 2, first.stored_id)
    history = repo.history(session, "template", first.stored_id)
    assert [(r.version, r.reason) for r in history] == [(1, "test"), (2, "reworded")]
    assert history[0].snapshot["jinja"].startswith("Suppose") and history[1].snapshot["jinja"].startswith("Assume")


def test_applied_records_name_their_template_version_and_source_row(session):
    [can_we_infer] = stored(session, CAN_WE_INFER)
    report = template_service.apply(session, CURA, Source("rte-val", RTE_ROWS), [can_we_infer], RTE_LABELS,
                                    dataset="rte-instructions")
    assert (report.created, report.outcome.rows, report.duplicates_skipped) == (4, 4, 0)
    record = repo.get_record(session, report.record_ids[1])
    assert (record.instruction, record.outputs, record.origin, record.created_by) == (
        'Suppose It rained all day. Can we infer that "The streets are dry."? Yes or no?', ["No"], "template", "cura")
    assert record.provenance == {
        "template": {"name": "can we infer", "id": "4163e6f1-1a83-4c73-b867-02eb7ac80316", "version": 1,
                     "source": "promptsource", "collection": "super_glue/rte", "stored_id": can_we_infer.stored_id},
        "source": {"dataset": "rte-val", "row": 2}, "outputs": [{"by": "template"}]}
    from curation.provenance import describe

    assert describe(record.provenance, record.origin, record.created_by) == [
        "Made by a template from dataset rte-val, row 2", "Template: “can we infer” v1 · promptsource super_glue/rte"]
    again = template_service.apply(session, CURA, Source("rte-val", RTE_ROWS), [can_we_infer], RTE_LABELS,
                                   dataset="rte-instructions")
    assert (again.created, again.duplicates_skipped) == (0, 4)
    assert template_service.records_by_template(session, CURA, "rte-instructions") == {"can we infer": 4}


BAD = {
    "a missing field": ("{{ premise }} {{ hypotesis }} ||| {{ answer_choices[label] }}", RTE_LABELS,
                        "line 1, row 1: the field 'hypotesis' is missing from the row"),
    "an answer choice out of range": ("{{ premise }} ||| {{ answer_choices[label + 1] }}", RTE_LABELS,
                                      "row 2: answer choice 2 is out of range; the template has 2 answer choices"),
    "a label the mapping lacks": ("{{ premise }} ||| {{ answer_choices[label] }}",
                                  FieldMapping(labels={"label": {"entailment": 0}}),
                                  "row 2: the label value 'not_entailment' has no id in the label mapping"),
    "a forbidden name from the data": ("{{ premise[hypothesis] }} ||| x", FieldMapping(),
                                       "row 1: the sandbox refused access to attribute"),
}


@pytest.mark.parametrize("bad", list(BAD))
def test_a_bad_input_at_apply_is_refused_in_words_and_nothing_is_written(session, bad):
    jinja, mapping, message = BAD[bad]
    rows = [dict(r, hypothesis="__class__") for r in RTE_ROWS] if "forbidden" in bad else RTE_ROWS
    [user] = stored(session, Template(name=bad, jinja=jinja, answer_choices=YES_NO, collection="rte"))
    session.commit()
    before = counts(session)
    with pytest.raises(InvalidInput) as refused:
        template_service.apply(session, CURA, Source("rte-val", rows), [user], mapping, dataset="rte-out")
    session.rollback()
    assert message in str(refused.value)
    assert counts(session) == before and repo.get_dataset(session, "rte-out") is None


@pytest.mark.parametrize("jinja, message", [
    ("{{ premise }}\n{{ hypothesis } ||| x", "template “bad” (rte), line 2: unexpected '}'"),
    ("{{ ''.__class__ }} ||| x", "template “bad” (rte), line 1: '__class__' is not allowed"),
])
def test_a_template_that_cannot_compile_is_never_stored(session, jinja, message):
    before = counts(session)
    with pytest.raises(InvalidInput) as refused:
        template_store.save_template(session, CURA, Template(name="bad", jinja=jinja, collection="rte"))
    assert str(refused.value).startswith(message)
    assert counts(session) == before


def test_an_empty_dataset_is_no_source_and_nothing_is_written(session):
    repo.get_or_create_dataset(session, "empty")
    session.commit()
    before = counts(session)
    with pytest.raises(InvalidInput, match="the source empty has no rows: there is nothing to apply a template to"):
        template_service.dataset_source(session, CURA, "empty")
    assert counts(session) == before


def test_templates_are_curator_work(session):
    with pytest.raises(PermissionDenied, match="only a curator or an admin works with templates"):
        template_store.store_templates(session, ANN, [CAN_WE_INFER], reason="x")
    with pytest.raises(PermissionDenied):
        template_service.apply(session, ANN, Source("s", RTE_ROWS), [], RTE_LABELS, dataset="x")


def test_a_written_template_is_saved_with_a_version_check(session):
    mine = Template(name="short", jinja="{{ premise }} ||| {{ answer_choices[label] }}", answer_choices=YES_NO,
                    collection="rte")
    saved = template_store.save_template(session, CURA, mine)
    assert (saved.source, saved.version, saved.id) == ("user", 1, f"user:{saved.stored_id}")
    with pytest.raises(InvalidInput, match="there is already a template “short” \\(rte\\)"):
        template_store.save_template(session, CURA, mine)
    from dataclasses import replace

    edited = template_store.save_template(session, CURA, replace(mine, jinja="P: {{ premise }} ||| x"), expected_version=1)
    assert edited.version == 2
    with pytest.raises(repo.ConflictError):
        template_store.save_template(session, CURA, replace(mine, jinja="Q ||| x"), expected_version=1)


def test_a_stored_dataset_imported_from_a_table_is_a_labelled_source(session, tmp_path):
    from curation.importer import import_files

    table = tmp_path / "rte.csv"
    table.write_text("premise,hypothesis,label,idx\n" + "".join(
        f'"{r["premise"]}","{r["hypothesis"]}",{r["label"]},{n}\n' for n, r in enumerate(RTE_ROWS)), encoding="utf-8")
    import_files(session, "rte-table", [table], mapping={"instruction": "premise", "input": "hypothesis",
                                                        "output": "label"})
    source = template_service.dataset_source(session, CURA, "rte-table")
    assert source.rows[0] == {"instruction": "The cat sat on the mat.", "input": "A cat is sitting.",
                              "output": "entailment", "idx": "0"}
    mapping = FieldMapping(fields={"premise": "instruction", "hypothesis": "input", "label": "output"},
                           labels=RTE_LABELS.labels)
    [can_we_infer] = stored(session, CAN_WE_INFER)
    report = template_service.apply(session, CURA, source, [can_we_infer], mapping, dataset="rte-made")
    record = repo.get_record(session, report.record_ids[0])
    assert record.outputs == ["Yes"] and record.provenance["source"] == {
        "dataset": "rte-table", "row": 1, "record": source.record_ids[0]}


def sni_plan(**changes) -> template_tasks.TaskPlan:
    values = dict(dataset="rte-tasks", name="rte_can_we_infer", definition="Answer Yes if the premise supports the "
                  "hypothesis, else No.", examples=[
                      template_tasks.ExampleRow("positive", 1, "A cat on a mat is a cat sitting."),
                      template_tasks.ExampleRow("positive", 2, "Rain all day makes streets wet, not dry."),
                      template_tasks.ExampleRow("negative", 3, "Buying bread is shopping: the answer is Yes.", "No")])
    values.update(changes)
    return template_tasks.TaskPlan(**values)


def test_an_sni_task_is_built_from_the_rows_and_validated_before_it_is_saved(session):
    from curation.formats.sni import task_to_json
    from curation.quality.sni import validate_task

    [can_we_infer] = stored(session, CAN_WE_INFER)
    build = template_tasks.build_task(session, CURA, Source("rte-val", RTE_ROWS), can_we_infer, RTE_LABELS, sni_plan())
    view = build.view
    assert [(e.kind, e.output) for e in view.form.examples] == [("positive", "Yes"), ("positive", "No"),
                                                                ("negative", "No")]
    assert [(i.id, i.outputs) for i in view.form.instances] == [("rte_can_we_infer-4", ["No"])]
    [instance] = session.query(Record).filter(Record.task_id == view.id).all()
    assert (instance.instruction, instance.origin, instance.provenance["source"]) == (
        view.form.definition, "template", {"dataset": "rte-val", "row": 4})
    stored_task = task_to_json(repo.task_draft(session, repo.list_tasks(session, instance.dataset_id)[0]))
    # Saved as a task in the making: one instance is short of a finished task's size, and only that is left.
    assert [v.rule for v in validate_task(stored_task)] == ["instance-count", "label-balance"]


def test_an_sni_task_that_breaks_a_rule_is_refused_with_the_rules_and_nothing_is_written(session):
    [can_we_infer] = stored(session, CAN_WE_INFER)
    session.commit()
    before = counts(session)
    with pytest.raises(InvalidInput) as refused:
        template_tasks.build_task(session, CURA, Source("rte-val", RTE_ROWS), can_we_infer, RTE_LABELS,
                                  sni_plan(examples=sni_plan().examples[:1]))
    session.rollback()
    assert str(refused.value) == ("the task breaks the SNI rules, so nothing was saved: [positive-examples] needs more "
                                  "than one positive example, has 1; [negative-examples] needs at least one negative "
                                  "example, has 0")
    assert counts(session) == before


# ---- the Templates tab through gradio_client -----------------------------------------------------------------

@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    """A running studio whose dataset rte-table holds RTE rows imported from a CSV (premise -> instruction...)."""
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    from curation.importer import import_files
    from db.engine import open_database, session_for
    from tests.ui_server import PASSWORDS, running_studio, seed

    folder = tmp_path_factory.mktemp("templates_tab")
    url = f"sqlite:///{folder / 'studio.db'}"
    seed(url)
    table = folder / "rte.csv"
    table.write_text("premise,hypothesis,label\n" + "".join(
        f'"{r["premise"]}","{r["hypothesis"]}",{r["label"]}\n' for r in RTE_ROWS), encoding="utf-8")
    (folder / "templates.yaml").write_text(PROMPTSOURCE_YAML, encoding="utf-8")
    engine = open_database(url)
    with session_for(engine) as session:
        import_files(session, "rte-table", [table], mapping={"instruction": "premise", "input": "hypothesis",
                                                            "output": "label"})
    with running_studio(url) as studio:
        yield {"studio": studio, "engine": engine, "folder": folder,
               "cura": Client(studio.url, auth=("cura", PASSWORDS["cura"]), verbose=False, httpx_kwargs=SLOW_LOAD),
               "ann": Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)}
    engine.dispose()


FIELDS = "premise = instruction\nhypothesis = input\nlabel = output"
NO_LABELS = {"headers": ["Source value", "Rows", "Id", "Answer choice"], "data": []}


def labels(*pairs):
    return {"headers": NO_LABELS["headers"], "data": [[value, "", number, ""] for value, number in pairs]}


def test_the_tab_imports_maps_previews_and_applies(tab):
    from gradio_client import handle_file

    cura = tab["cura"]
    line, collection, opened, chosen = cura.predict(handle_file(str(tab["folder"] / "templates.yaml")), "", "",
                                                    api_name="/templates_import")
    assert line == "Imported 1 templates into **super_glue/rte**: 1 new, 0 changed (new version), 0 unchanged."
    [(label, stored_id)] = opened["choices"]
    assert label == "can we infer · v1 · promptsource"
    info, rows, table = cura.predict("rte-table", FIELDS, "label", NO_LABELS, "Yes ||| No",
                                     api_name="/templates_source")
    assert info.startswith("**rte-table**: 4 rows · columns: `instruction`, `input`, `output`")
    assert table["data"] == [["entailment", 2, 0, "Yes"], ["not_entailment", 2, 1, "No"]]
    editor = cura.predict(stored_id, api_name="/templates_open")
    assert editor[:2] == ("super_glue/rte", "can we infer") and editor[7] == 1
    html = cura.predict("rte-table", FIELDS, "label", table, *editor[:4], api_name="/templates_preview")
    assert html.count('class="preview-row"') == 4 and "→ <b>No</b>" in html and "Suppose It rained all day." in html
    report = cura.predict("rte-table", FIELDS, "label", table, [stored_id], "rte-made", "all", 0, 0,
                          api_name="/templates_apply")
    assert report.startswith("**4 records** made in dataset **rte-made** from 4 rows")
    from db.engine import session_for

    with session_for(tab["engine"]) as session:
        assert template_service.records_by_template(session, CURA, "rte-made") == {"can we infer": 4}


def test_the_tab_refuses_a_label_the_mapping_lacks_and_writes_nothing(tab):
    from gradio_client.exceptions import AppError

    from db.engine import session_for

    cura = tab["cura"]
    with session_for(tab["engine"]) as session:
        [stored_one] = stored(session, Template(name="strict", jinja="{{ premise }} ||| {{ answer_choices[label] }}",
                                                answer_choices=YES_NO, collection="rte"))
        session.commit()
        before = counts(session)
    with pytest.raises(AppError, match="Row 2: the label value 'not_entailment' has no id in the label mapping"):
        cura.predict("rte-table", FIELDS, "label", labels(("entailment", 0)), [str(stored_one.stored_id)],
                     "rte-refused", "round_robin", 0, 0, api_name="/templates_apply")
    with pytest.raises(AppError, match=r"line 1: '__class__' is not allowed"):
        cura.predict("rte", "bad", "{{ ''.__class__ }} ||| x", "", False, False, "", 0, api_name="/templates_save")
    with session_for(tab["engine"]) as session:
        assert counts(session) == before


def test_annotators_do_not_work_with_templates(tab):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="this needs the curator role"):
        tab["ann"].predict("rte-table", FIELDS, "label", NO_LABELS, "", api_name="/templates_source")


def test_the_tab_builds_an_sni_task_only_when_it_passes_the_rules(tab):
    from gradio_client.exceptions import AppError

    from db.engine import session_for

    with session_for(tab["engine"]) as session:
        [can_we_infer] = stored(session, CAN_WE_INFER)
        session.commit()
    examples = {"headers": ["Kind", "Row", "Explanation", "Output"], "data": [
        ["positive", 1, "A cat on a mat is sitting.", ""], ["positive", 2, "Rain makes streets wet.", ""],
        ["negative", 3, "Buying bread is shopping.", "No"]]}
    args = ("rte-table", FIELDS, "label", labels(("entailment", 0), ("not_entailment", 1)), str(can_we_infer.stored_id),
            "rte_task", "Answer Yes if the premise supports the hypothesis.")
    with pytest.raises(AppError, match=r"\[negative-examples\] needs at least one negative example"):
        tab["cura"].predict(*args, {**examples, "data": examples["data"][:2]}, "rte-tasks", 0,
                            api_name="/templates_build_task")
    line = tab["cura"].predict(*args, examples, "rte-tasks", 0, api_name="/templates_build_task")
    assert "rte_task** in rte-tasks: 1 instances, 3 examples" in line


# ---- the command line ----------------------------------------------------------------------------------------

def test_the_cli_applies_templates_from_a_file_and_refuses_in_words(tmp_path, capsys):
    from curation.cli import main
    from curation.services import admin
    from db.engine import open_database, session_for

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = open_database(url)
    with session_for(engine) as session:
        admin.add_user(session, "cura", "curator", "cura-password")
        session.commit()
    rows = tmp_path / "rte.jsonl"
    rows.write_text("".join(__import__("json").dumps(r) + "\n" for r in RTE_ROWS), encoding="utf-8")
    (tmp_path / "templates.yaml").write_text(PROMPTSOURCE_YAML, encoding="utf-8")
    common = ["--db", url, "templates", "apply", "--source", str(rows), "--templates",
              f"{tmp_path / 'templates.yaml'}:can we infer", "--dataset", "rte-cli", "--user", "cura"]
    assert main([*common, "--labels", "0=entailment,1=not_entailment", "--cap", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dataset 'rte-cli': 3 records from 3 rows of rte.jsonl through 1 templates (3 renders")
    assert main([*common, "--labels", "0=entailment"]) == 2
    assert capsys.readouterr().err == ("error: row 2: the label value 'not_entailment' has no id in the label mapping "
                                       "(it maps 'entailment')\n")
    with session_for(engine) as session:
        assert template_service.records_by_template(session, CURA, "rte-cli") == {"can we infer": 3}
    engine.dispose()


def test_the_cli_lists_imports_and_builds_a_task(tmp_path, capsys):
    from curation.cli import main
    from curation.services import admin
    from db.engine import open_database, session_for

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = open_database(url)
    with session_for(engine) as session:
        admin.add_user(session, "cura", "curator", "cura-password")
        session.commit()
    yaml_file, rows = tmp_path / "templates.yaml", tmp_path / "rte.jsonl"
    yaml_file.write_text(PROMPTSOURCE_YAML, encoding="utf-8")
    rows.write_text("".join(__import__("json").dumps(r) + "\n" for r in RTE_ROWS), encoding="utf-8")
    assert main(["templates", "list", str(yaml_file)]) == 0
    assert capsys.readouterr().out == ("can we infer\t4163e6f1-1a83-4c73-b867-02eb7ac80316\tfields: hypothesis, label, "
                                       "premise\toriginal task, choices in prompt\tAccuracy\n")
    assert main(["--db", url, "templates", "import", str(yaml_file), "--user", "cura"]) == 0
    assert capsys.readouterr().out == "1 templates: 1 new, 0 changed (new version), 0 unchanged\n"
    task = ["--db", url, "templates", "task", "--source", str(rows), "--templates", "super_glue/rte:can we infer",
            "--labels", "0=entailment,1=not_entailment", "--dataset", "rte-tasks", "--user", "cura",
            "--name", "rte_cli", "--definition", "Answer Yes if the premise supports the hypothesis, else No.",
            "--example", "positive:1:A cat on a mat sits.", "--example", "positive:2:Rain wets streets."]
    assert main(task) == 2
    assert "[negative-examples] needs at least one negative example, has 0" in capsys.readouterr().err
    assert main([*task, "--example", "negative:3:Buying bread is shopping.:No"]) == 0
    assert capsys.readouterr().out.endswith("'rte_cli' in rte-tasks: 1 instances, 3 examples, 0 duplicate rows skipped\n")
    engine.dispose()


@pytest.mark.slow
def test_a_hub_dataset_is_a_labelled_source_at_its_commit(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.hub_server import HubServer
    from curation.services import admin
    from db.engine import open_database, session_for

    push = ("import json, sys, datasets\n"
            "features = datasets.Features({'premise': datasets.Value('string'), 'hypothesis': datasets.Value('string'),"
            " 'label': datasets.ClassLabel(names=['entailment', 'not_entailment'])})\n"
            "datasets.DatasetDict({'validation': datasets.Dataset.from_list(json.loads(sys.argv[1]), features=features)})"
            ".push_to_hub('tester/rte')\n")
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = open_database(url)
    with session_for(engine) as session:
        admin.add_user(session, "cura", "curator", "cura-password")
        session.commit()
    (tmp_path / "templates.yaml").write_text(PROMPTSOURCE_YAML, encoding="utf-8")
    with HubServer(tokens={"hf_t": "tester"}) as hub:
        env = hub.client_env(token="hf_t") | {"HF_HOME": str(tmp_path / "hf")}
        pushed = subprocess.run([sys.executable, "-c", push, json.dumps(RTE_ROWS)], env=env, capture_output=True,
                                text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        commit = hub.repo("dataset", "tester/rte").branches["main"]
        applied = subprocess.run(
            [sys.executable, "-m", "curation", "--db", url, "templates", "apply", "--source",
             "hub:tester/rte#validation", "--templates", str(tmp_path / "templates.yaml"), "--labels",
             "0=entailment,1=not_entailment", "--dataset", "rte-from-hub", "--user", "cura"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith(f"dataset 'rte-from-hub': 4 records from 4 rows of hub:tester/rte@{commit}"
                                     "#validation through 1 templates")
    with session_for(engine) as session:
        [first, *_] = repo.iter_records(session, repo.get_dataset(session, "rte-from-hub").id)
        assert first.outputs == ["Yes"] and first.provenance["source"] == {
            "dataset": f"hub:tester/rte@{commit}#validation", "row": 1}
    engine.dispose()
