"""The error that lists every problem found, one a line, rather than stopping at the first."""
from __future__ import annotations

from collections.abc import Iterable


class ProblemsError(Exception):
    """`problems` lists each reason; str() is one reason a line."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)
