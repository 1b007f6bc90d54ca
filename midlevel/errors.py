"""One exception hierarchy for the package.

Every error says what was wrong and where: the file, the row (1-based, as a spreadsheet
shows it, header = row 1) and the column at fault, when those are known, or the argument.

    MidlevelError
      SpecError, AudioError, CacheError, TrainingError, CheckpointError, ReportError
      DataError
        ValidationFailed (carries every Problem)
      ArgumentError (also a ValueError)
      ExplainError
        AttributionError, ListenError
"""
from __future__ import annotations

from dataclasses import dataclass


class MidlevelError(Exception):
    """Base class of every error this package raises on purpose."""


class SpecError(MidlevelError):
    """A data spec is malformed: names the spec file and the key at fault."""


class AudioError(MidlevelError):
    """An audio file is missing, undecodable, empty or silent: names the file."""


class DataError(MidlevelError):
    """Annotation tables hold bad values (non-numeric, out of range, duplicate ids...)."""


class CacheError(MidlevelError):
    """The feature cache cannot be used as asked."""


class TrainingError(MidlevelError):
    """Training cannot go on (non-finite loss, a bottleneck without concepts, ...)."""


class CheckpointError(MidlevelError):
    """A checkpoint or run directory is missing, incomplete or incompatible."""


class ArgumentError(MidlevelError, ValueError):
    """A function or command argument is out of range or of the wrong kind: names it."""


class ExplainError(MidlevelError):
    """An explanation cannot be computed as asked (a black box asked for concepts, too few
    clips for a statistic, an unknown concept or target...)."""


class AttributionError(ExplainError):
    """An attribution could not be computed (bad method, output, shapes)."""


class ListenError(ExplainError):
    """A listenable explanation cannot be made (mask and audio do not fit)."""


class ReportError(MidlevelError):
    """A comparison report cannot be made from the runs given."""


@dataclass(frozen=True)
class Problem:
    """One problem found while validating a dataset.

    Attributes
    ----------
    message : str
        What is wrong, in words.
    file : str or None
        The file at fault (audio file or annotation table).
    row : int or None
        1-based line number in ``file`` (the header is line 1).
    column : str or None
        The column at fault.
    clip : str or None
        The clip id concerned.
    """

    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    clip: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        if self.clip is not None:
            where.append(f"clip '{self.clip}'")
        return (", ".join(where) + ": " if where else "") + self.message


class ValidationFailed(DataError):
    """Raised with every problem found, not only the first."""

    def __init__(self, problems: list[Problem], header: str = "dataset has problems"):
        self.problems = list(problems)
        lines = [f"{header} ({len(self.problems)}):"] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
