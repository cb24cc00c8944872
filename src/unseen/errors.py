"""Errors that the CLI turns into exit code 2 with a single clear message."""

from __future__ import annotations


class UnseenInputError(Exception):
    """Bad input from the user: a file, field, name or option that is not what was expected.

    The message must name the file (or option), the field, what was expected and what was
    found. The CLI prints it without a traceback and exits with status 2.
    """


def input_error(source: str, field: str | None, expected: str, found: str) -> UnseenInputError:
    """Build an `UnseenInputError` with the house format: where, which field, expected, found."""
    where = f"{source}: field '{field}'" if field else source
    return UnseenInputError(f"{where}: expected {expected}, found {found}")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or Inf. The message says which loss, at which epoch and step, and
    where the last good checkpoint is; the CLI prints it and exits with status 1."""
