"""The field and label mappings a curator makes so that each PromptSource template set of
../shared/data/templates fits its labelled rows (the data's README, section 2). Only COPA fits as published.

Each entry: the templates.yaml, the data file, the column names of a header-less file, and the mapping.
Used by tests/test_templates.py and bench/import_export.py --templates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from curation.templates import FieldMapping
from tests.conftest import SHARED_DATA

ROOT = SHARED_DATA / "templates"
TEMPLATES = ROOT / "promptsource" / "templates"
DATA = ROOT / "data"
FLAN_V1 = ROOT / "flan" / "flan" / "templates.py"
FLAN_V2 = ROOT / "flan" / "flan" / "v2" / "templates.py"

TREC_COARSE = ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]
# The HF `trec` ClassLabel order of fine labels (the one these templates index with fine_label - offset).
TREC_FINE = [
    "ABBR:abb", "ABBR:exp",
    "ENTY:animal", "ENTY:body", "ENTY:color", "ENTY:cremat", "ENTY:currency", "ENTY:dismed", "ENTY:event",
    "ENTY:food", "ENTY:instru", "ENTY:lang", "ENTY:letter", "ENTY:other", "ENTY:plant", "ENTY:product",
    "ENTY:religion", "ENTY:sport", "ENTY:substance", "ENTY:symbol", "ENTY:techmeth", "ENTY:termeq", "ENTY:veh",
    "ENTY:word",
    "DESC:def", "DESC:desc", "DESC:manner", "DESC:reason",
    "HUM:gr", "HUM:ind", "HUM:title", "HUM:desc",
    "LOC:city", "LOC:country", "LOC:mount", "LOC:other", "LOC:state",
    "NUM:code", "NUM:count", "NUM:date", "NUM:dist", "NUM:money", "NUM:ord", "NUM:other", "NUM:period",
    "NUM:perc", "NUM:speed", "NUM:temp", "NUM:volsize", "NUM:weight",
]


def ids(*values: str) -> dict[str, int]:
    return {value: number for number, value in enumerate(values)}


@dataclass(frozen=True)
class Fit:
    templates: str  # under promptsource/templates
    data: str  # under data/
    mapping: FieldMapping = field(default_factory=FieldMapping)
    columns: tuple[str, ...] | None = None  # a CSV without a header line

    @property
    def templates_path(self):
        return TEMPLATES / self.templates / "templates.yaml"

    @property
    def data_path(self):
        return DATA / self.data


FITS = {
    "rte": Fit("super_glue/rte", "super_glue/rte/val.jsonl",
               FieldMapping(labels={"label": ids("entailment", "not_entailment")})),
    "boolq": Fit("super_glue/boolq", "super_glue/boolq/val.head2000.jsonl",
                 FieldMapping(labels={"label": ids("false", "true")})),
    "cb": Fit("super_glue/cb", "super_glue/cb/val.jsonl",
              FieldMapping(labels={"label": ids("entailment", "contradiction", "neutral")})),
    "copa": Fit("super_glue/copa", "super_glue/copa/val.jsonl"),
    "sst2": Fit("glue/sst2", "glue/sst2/dev.tsv",
                FieldMapping(fields={"sentence": "text"}, labels={"label": ids("0", "1")})),
    "ag_news_csv": Fit("ag_news", "ag_news/test.head2000.csv",
                       FieldMapping(fields={"text": "{{ title }} {{ description }}", "label": "class"},
                                    labels={"label": ids("1", "2", "3", "4")}),
                       columns=("class", "title", "description")),
    "ag_news": Fit("ag_news", "ag_news/test.sample100.jsonl",
                   FieldMapping(labels={"label": ids("World", "Sports", "Business", "Technology")})),
    "imdb": Fit("imdb", "imdb/test.sample100.jsonl", FieldMapping(labels={"label": ids("negative", "positive")})),
    "rotten_tomatoes": Fit("rotten_tomatoes", "rotten_tomatoes/test.sample100.jsonl",
                           FieldMapping(labels={"label": ids("negative", "positive")})),
    "trec": Fit("trec", "trec/test.txt", FieldMapping(
        fields={"text": "{{ line.split(' ', 1)[1] }}", "coarse_label": "{{ line.split(':', 1)[0] }}",
                "fine_label": "{{ line.split(' ', 1)[0] }}"},
        labels={"coarse_label": ids(*TREC_COARSE), "fine_label": ids(*TREC_FINE)})),
}
