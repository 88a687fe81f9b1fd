"""What a reader says about input it cannot take."""
from __future__ import annotations

from dataclasses import dataclass


class FormatError(Exception):
    """The whole file cannot be imported; the message is one line naming the file and the problem."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class RowError(ValueError):
    """One row cannot be imported; the message is the reason."""


@dataclass(frozen=True)
class RejectedRow:
    location: str  # "line 12" (JSONL, CSV) or "index 11" (JSON array)
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"
