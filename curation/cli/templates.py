"""templates list, import, preview, apply and task: PromptSource and FLAN templates over labelled data.

    python -m curation templates list super_glue/rte/templates.yaml
    python -m curation templates apply --source val.jsonl --templates rte/templates.yaml:"can we infer" \\
        --dataset rte-instructions --labels 0=entailment,1=not_entailment --how all --cap 100 --user cura
"""
from __future__ import annotations

import argparse
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import open_session
from curation.templates import HOW, FieldMapping, TemplateError, load_flan, load_promptsource, parse_fields, parse_labels


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("templates", help="prompt templates (PromptSource, FLAN) over labelled data")
    commands = group.add_subparsers(dest="templates_command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="the templates of a PromptSource templates.yaml or a FLAN templates.py")
    p.add_argument("file", metavar="FILE")
    _flan_arguments(p)
    p.set_defaults(run=run_list)

    p = commands.add_parser("import", help="store a file's templates (a changed one gets a new version)")
    p.add_argument("file", metavar="FILE")
    _flan_arguments(p)
    p.add_argument("--collection", default=None, help="store them under this collection (default: the file's)")
    p.add_argument("--user", required=True, metavar="NAME", help="a curator or admin")
    p.set_defaults(run=run_import)

    for name, help_text in (("preview", "render templates on 5 sample rows; nothing is written"),
                            ("apply", "make records from a labelled source through templates"),
                            ("task", "build a Super-NaturalInstructions task from a source through one template")):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--source", required=True, metavar="DATASET|FILE",
                       help="a stored dataset, a labelled file (.jsonl .json .csv .tsv .txt .parquet), "
                            "or hub:OWNER/NAME[@REVISION][#SPLIT]")
        p.add_argument("--columns", default=None, metavar="A,B,C", help="the columns of a CSV without a header")
        p.add_argument("--templates", required=True, metavar="FILE[:name,...]",
                       help="a templates file or a stored collection, and the templates to use (default: all)")
        _flan_arguments(p)
        p.add_argument("--map", action="append", default=[], metavar="field=column",
                       help="a template field from a source column, or from Jinja: text={{ title }} {{ body }}")
        p.add_argument("--labels", action="append", default=[], metavar="[field:]id=value,...",
                       help="label ids, e.g. 0=entailment,1=not_entailment (field 'label' unless named)")
        p.add_argument("--cap", type=int, default=None, metavar="N", help="use the first N rows of the source")
        if name != "preview":
            p.add_argument("--dataset", required=True, metavar="NAME", help="where the records go (created if new)")
            p.add_argument("--user", required=True, metavar="NAME", help="a curator or admin")
        if name == "apply":
            p.add_argument("--how", choices=list(HOW), default="round_robin", help="; ".join(f"{k}: {v}" for k, v in HOW.items()))
            p.add_argument("--seed", type=int, default=0, help="the seed of --how random")
        if name == "task":
            p.add_argument("--name", required=True, help="the task's name")
            p.add_argument("--definition", required=True, help="the task's definition, written once")
            p.add_argument("--example", action="append", default=[], metavar="KIND:ROW:EXPLANATION[:OUTPUT]",
                           help="a row as an example: positive:3:why, or negative:7:why:the wrong output")
        p.set_defaults(run={"preview": run_preview, "apply": run_apply, "task": run_task}[name])


def _flan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flan-task", default=None, metavar="TASK", help="the FLAN task of a templates.py (e.g. rte)")
    p.add_argument("--options", default=None, metavar="A|B|...",
                   help="a FLAN task's options in label order, separated by | (e.g. yes|no)")


def _options(args) -> list[str] | None:
    return [o.strip() for o in args.options.split("|") if o.strip()] if args.options else None


def _read(path: Path, args):
    try:
        if path.suffix == ".py":
            if not args.flan_task:
                raise CommandError(f"{path.name} holds FLAN's patterns for many tasks: pass --flan-task (e.g. rte)")
            return load_flan(path, args.flan_task, options=_options(args))
        return load_promptsource(path)
    except (TemplateError, OSError) as error:
        raise CommandError(str(error)) from None


def run_list(args: argparse.Namespace) -> int:
    from curation.templates import compile_template

    for template in _read(Path(args.file), args):
        try:
            fields = ", ".join(sorted(compile_template(template).fields))
        except TemplateError as error:
            fields = f"does not compile: {error}"
        flags = [name for name, on in (("original task", template.original_task),
                                       ("choices in prompt", template.choices_in_prompt)) if on]
        print(f"{template.name}\t{template.id}\tfields: {fields}\t{', '.join(flags) or '-'}\t"
              f"{', '.join(template.metrics) or '-'}")
    return 0


def _actor(session, name: str):
    from curation.services.admin import actor_for

    actor = actor_for(session, name)
    if actor is None:
        raise CommandError(f"there is no user named {name!r}")
    return actor


def _refusal(error: Exception) -> CommandError:
    return CommandError(str(error))


def run_import(args: argparse.Namespace) -> int:
    from curation.services import template_store
    from curation.services.errors import InvalidInput, PermissionDenied

    with open_session(args) as session:
        try:
            report = template_store.import_templates(session, _actor(session, args.user), args.file,
                                                     flan_task=args.flan_task, options=_options(args),
                                                     collection=args.collection)
        except (InvalidInput, PermissionDenied) as error:
            raise _refusal(error) from None
        session.commit()
    print(f"{len(report.templates)} templates: {report.created} new, {report.changed} changed (new version), "
          f"{report.unchanged} unchanged")
    return 0


def _split_templates(spec: str) -> tuple[str, list[str]]:
    """(file or stored collection, [names]) of FILE[:name,...] (a name may hold ':' or ',')."""
    if Path(spec).is_file():
        return spec, []
    for at in [i for i, c in enumerate(spec) if c == ":"]:
        if Path(spec[:at]).is_file():
            return spec[:at], [spec[at + 1:]] if spec[at + 1:] else []
    head, colon, names = spec.partition(":")
    return head, [names] if colon and names else []


def _chosen(session, actor, args, *, store: bool = True) -> list:
    """The templates --templates names: a file's are stored first (a record names a stored version)."""
    from curation.services import template_store

    where, names = _split_templates(args.templates)
    if Path(where).is_file():
        stored = (template_store.import_templates(session, actor, where, flan_task=args.flan_task,
                                                  options=_options(args)).templates
                  if store else _read(Path(where), args))
    else:
        stored = template_store.list_templates(session, actor, collection=where)
        if not stored:
            raise CommandError(f"{where}: no such file, and no stored collection of that name")
    if not names:
        return stored
    by_name = {t.name: t for t in stored} | {t.id: t for t in stored}
    # One name holding commas ("…why? C1 or C2") is taken whole; otherwise the names are comma-separated.
    wanted = names if names[0] in by_name else [n.strip() for n in names[0].split(",") if n.strip()]
    if missing := [n for n in wanted if n not in by_name]:
        raise CommandError(f"{where} has no template {missing[0]!r} (it has: {', '.join(t.name for t in stored)})")
    return [by_name[n] for n in wanted]


def _mapping(args) -> FieldMapping:
    try:
        labels = dict(parse_labels(text) for text in args.labels)
        return FieldMapping(fields=parse_fields(args.map), labels=labels)
    except TemplateError as error:
        raise CommandError(str(error)) from None


def _source(session, actor, args):
    from curation.services import templates

    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    if args.source.startswith("hub:"):
        import os

        return templates.hub_source(actor, args.source, token=os.environ.get("HF_TOKEN") or None)
    if Path(args.source).is_file():
        return templates.file_source(args.source, columns=columns)
    return templates.dataset_source(session, actor, args.source)


def _run(args, work) -> int:
    from curation.services.errors import InvalidInput, NotFoundError, PermissionDenied

    with open_session(args) as session:
        try:
            actor = _actor(session, args.user) if getattr(args, "user", None) else _admin()
            chosen = _chosen(session, actor, args, store=args.templates_command != "preview")
            result = work(session, actor, _source(session, actor, args), chosen, _mapping(args))
        except (InvalidInput, PermissionDenied, NotFoundError) as error:
            session.rollback()
            raise _refusal(error) from None
        session.commit()
    return result


def _admin():
    from curation.services.permissions import Actor
    from db.models import Role

    return Actor("cli", Role.admin)  # preview writes nothing but the templates it reads


def run_preview(args: argparse.Namespace) -> int:
    from curation.services import templates

    def work(session, actor, source, chosen, mapping):
        for template in chosen:
            print(f"== {template.label} v{template.version}")
            for shown in templates.preview(session, actor, source, template, mapping):
                print(f"-- row {shown.row}: " + (shown.problem or f"{shown.prompt}\n=> {shown.target}"))
        return 0

    return _run(args, work)


def run_apply(args: argparse.Namespace) -> int:
    from curation.services import templates

    def work(session, actor, source, chosen, mapping):
        report = templates.apply(session, actor, source, chosen, mapping, dataset=args.dataset, how=args.how,
                                 seed=args.seed, cap=args.cap)
        done = report.outcome
        print(f"dataset {report.dataset!r}: {report.created} records from {done.rows} rows of {source.name} through "
              f"{len(chosen)} templates ({done.renders} renders, {sum(done.nothing.values())} rendered nothing, "
              f"{report.duplicates_skipped} duplicates skipped) in {report.seconds:.2f} s")
        for name, count in sorted(done.per_template.items()):
            print(f"  {name}: {count}" + (f" ({done.nothing[name]} rows rendered nothing)" if done.nothing[name] else ""))
        return 0

    return _run(args, work)


def run_task(args: argparse.Namespace) -> int:
    from curation.services import template_tasks

    examples = []
    for text in args.example:
        kind, _, rest = text.partition(":")
        row, _, rest = rest.partition(":")
        explanation, _, output = rest.partition(":")
        if not row.strip().isdigit():
            raise CommandError(f"--example is KIND:ROW:EXPLANATION[:OUTPUT], not {text!r}")
        examples.append(template_tasks.ExampleRow(kind.strip(), int(row), explanation.strip(), output.strip()))

    def work(session, actor, source, chosen, mapping):
        if len(chosen) != 1:
            raise CommandError("a task is built through one template: name it in --templates FILE:name")
        plan = template_tasks.TaskPlan(dataset=args.dataset, name=args.name, definition=args.definition,
                                       examples=examples, cap=args.cap)
        build = template_tasks.build_task(session, actor, source, chosen[0], mapping, plan)
        print(f"task #{build.view.id} {build.view.form.name!r} in {args.dataset}: {len(build.view.form.instances)} "
              f"instances, {len(build.view.form.examples)} examples, {build.duplicates_skipped} duplicate rows skipped")
        return 0

    return _run(args, work)
