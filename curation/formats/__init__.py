"""Instruction data in and out: every common format <-> RecordDraft / TaskDraft."""
from curation.formats.errors import FormatError, RejectedRow
from curation.formats.readers import IMPORT_FORMATS, ParsedFile, read_file
from curation.formats.writers import EXPORT_FORMATS, to_alpaca, to_messages, to_prompt_completion

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "FormatError",
    "ParsedFile",
    "RejectedRow",
    "read_file",
    "to_alpaca",
    "to_messages",
    "to_prompt_completion",
]
