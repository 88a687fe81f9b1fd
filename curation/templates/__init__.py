"""Prompt templates over labelled datasets: PromptSource's Jinja and FLAN's patterns, rendered in a sandbox.

A template turns a labelled row (premise, hypothesis, label) into an instruction record (prompt, target).
Read templates (promptsource, flan), map a source's fields and labels to what they expect (mapping),
preview and apply them (apply). Nothing here touches storage: curation.services.templates does.
"""
from curation.templates.apply import HOW, Made, Outcome, PreviewRow, preview, render_rows, sample_rows
from curation.templates.flan import flan_templates, load_flan, read_flan_patterns
from curation.templates.mapping import FieldMapping, MappingError, RowMapper, parse_fields, parse_labels, suggest_ids
from curation.templates.model import SOURCES, Template, TemplateError
from curation.templates.promptsource import load_promptsource, read_promptsource
from curation.templates.sandbox import CompiledTemplate, compile_template
from curation.templates.sources import Source, SourceError, read_rows, read_source

__all__ = [
    "HOW", "SOURCES", "CompiledTemplate", "FieldMapping", "Made", "MappingError", "Outcome", "PreviewRow", "RowMapper",
    "Source", "SourceError", "Template", "TemplateError", "compile_template", "flan_templates", "load_flan",
    "load_promptsource", "parse_fields", "parse_labels", "preview", "read_flan_patterns", "read_promptsource",
    "read_rows", "read_source", "render_rows", "sample_rows", "suggest_ids",
]
