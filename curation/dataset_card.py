"""The dataset card: Hub YAML metadata, then what is in the data and how it was curated."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M")]


def size_category(count: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if count < limit), "n>1M")


@dataclass
class CardFacts:
    """Everything the card says, gathered by curation.publish from the database."""

    dataset: str
    repo_id: str
    description: str
    license: str | None
    language: str | None
    configs: list[str]
    default_config: str
    split_counts: dict[str, int]
    by_category: dict[str, int]
    by_status: dict[str, int]
    token_lengths: dict[str, float]
    tokenizer: str
    near_duplicates: str
    quality_flags: dict[str, int]
    annotators: int
    statuses: list[str]
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    # Who wrote the published records ({curation.stats.WRITTEN_BY key: records}) and which models drafted text.
    written_by: dict[str, int] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)
    # The annotation guidelines the records were written under (Markdown) and their version; "" when none.
    guidelines: str = ""
    guidelines_version: int = 0


def card_metadata(facts: CardFacts) -> dict[str, Any]:
    """The YAML header: license, language, task categories, size, tags and one Hub config per format."""
    total = sum(facts.split_counts.values())
    metadata = dict(facts.extra_metadata)  # e.g. dataset_info written by datasets.push_to_hub
    metadata.update({
        "license": facts.license or "other",
        "language": [facts.language or "en"],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(total)],
        "tags": ["instruction-tuning", "sft"],
        "pretty_name": facts.dataset,
        "configs": [
            {"config_name": name, **({"default": True} if name == facts.default_config else {}),
             "data_files": [{"split": split, "path": f"{name}/{split}-*"} for split in facts.split_counts]}
            for name in facts.configs
        ],
    })
    return metadata


def _table(title: str, counts: dict[str, Any], header: str) -> str:
    rows = "\n".join(f"| {key} | {value} |" for key, value in counts.items())
    return f"| {title} | {header} |\n|---|---|\n{rows}"


def _authorship(facts: CardFacts) -> str:
    """The "Who wrote it" section: the human / machine mix as a table, then the models that drafted text."""
    from curation.stats import WRITTEN_BY

    shown = {WRITTEN_BY[key]: count for key, count in facts.written_by.items()
             if count or key != "generated"}  # no generation pipeline yet: its row only once it made something
    models = ", ".join(f"`{model}` ({count} record{'s' if count != 1 else ''})"
                       for model, count in facts.models.items())
    return (f"{_table('Written by', shown, 'Records')}\n\n"
            + (f"Models that drafted text: {models}. A machine-drafted record keeps, per field, the model, its "
               "parameters, the prompt and whether a person edited or approved the text."
               if models else "No text in it was drafted by a model."))


def _guidelines_section(facts: CardFacts) -> str:
    """The guidelines as written, their headings one level down so they sit under the card's own heading."""
    if not facts.guidelines.strip():
        return ""
    text = re.sub(r"^(#{1,5})(\s)", r"#\1\2", facts.guidelines.strip(), flags=re.MULTILINE)
    return (f"## Annotation guidelines\n\nThe annotators wrote and the curators reviewed under these guidelines "
            f"(version {facts.guidelines_version}):\n\n{text}\n\n")


def card_body(facts: CardFacts) -> str:
    """The Markdown after the YAML header."""
    total = sum(facts.split_counts.values())
    splits = ", ".join(f"{split}: {count}" for split, count in facts.split_counts.items())
    lengths = ", ".join(f"{k} {v:g}" for k, v in facts.token_lengths.items()) or "no records"
    flags = ", ".join(f"{name} ({count} flagged)" for name, count in facts.quality_flags.items()) or "none recorded"
    configs = ", ".join(f"`{c}`" for c in facts.configs)
    return f"""# {facts.dataset}

{facts.description or "An instruction-tuning dataset curated with Instruct Studio."}

{total} records ({splits}), in {len(facts.configs)} formats as Hub configs: {configs}.

## Load it

```python
from datasets import load_dataset
ds = load_dataset("{facts.repo_id}", "{facts.default_config}")
```

## What is in it

{_table("Category", facts.by_category, "Records")}

{_table("Status", facts.by_status, "Records")}

Length in tokens (prompt and response together, {facts.tokenizer}): {lengths}.

## Who wrote it

{_authorship(facts)}

## How it was curated

- Records published: those with status {", ".join(facts.statuses)}; discarded records are never published.
- Near-duplicates: {facts.near_duplicates}. The train/test split is stratified by category and keeps every
  near-duplicate group on one side.
- Quality checks applied: {flags}.
- Annotators: {facts.annotators}.

{_guidelines_section(facts)}## How it was made

Written and reviewed in Instruct Studio (instruction, optional input, response, optional system prompt), then
exported with its row writers: `messages` is TRL's conversational format, `alpaca` has instruction/input/output,
and `prompt_completion` puts the loss on the final reply. Each published revision records which record versions
went in, so it can be rebuilt exactly.
"""


def render_card(facts: CardFacts) -> str:
    """The whole README.md: YAML metadata between --- lines, then the body."""
    import yaml

    header = yaml.safe_dump(card_metadata(facts), sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{card_body(facts)}"
