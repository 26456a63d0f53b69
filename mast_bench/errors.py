"""User-facing error types. The CLI prints these as one line, without a traceback."""

from __future__ import annotations

from mast_bench.config import ConfigError
from mast_bench.fileio import OutputDirError
from mast_bench.registry import UnknownNameError


class DatasetError(ValueError):
    """A dataset folder that is missing, incomplete or laid out differently from the official copy.

    An unreadable image is found while a DataLoader worker reads it; torch re-raises it in the main
    process as ``DatasetError("Caught DatasetError in DataLoader worker ...\nOriginal Traceback ...")``.
    The constructor keeps only the original one-line message, so the CLI still prints one line.
    """

    def __init__(self, message: object = "") -> None:
        text = str(message)
        if text.startswith("Caught DatasetError") and "\nOriginal Traceback" in text:
            last = text.rstrip().splitlines()[-1]  # "mast_bench.errors.DatasetError: <the original message>"
            text = last.split("DatasetError: ", 1)[-1]
        super().__init__(text)


class CheckpointError(ValueError):
    """A checkpoint that is truncated, foreign, unsafe to unpickle, or does not match the model."""


class TrainingError(RuntimeError):
    """Training stopped on purpose (e.g. a non-finite loss); the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which checkpoint was kept and how to resume.

    A ``KeyboardInterrupt`` subclass so that callers who do not know it still see an interrupt.
    ``resumable`` is true when a checkpoint exists to continue from.
    """

    def __init__(self, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable


class ProtocolError(ValueError):
    """An evaluation request that the protocol cannot honour (e.g. no validation split)."""


class RecordError(ValueError):
    """A result-record file (or a leaderboard CSV built from records) that is malformed; names the file."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    OutputDirError,
    UnknownNameError,
    DatasetError,
    CheckpointError,
    TrainingError,
    ProtocolError,
    RecordError,
    FileNotFoundError,
)
