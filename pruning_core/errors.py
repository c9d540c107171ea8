"""Error types that carry a message a user can act on (shown as-is by the CLI and the app)."""

from __future__ import annotations


class BhpvasError(Exception):
    """Base class: every expected failure of bhpvas; the message says what to fix."""


class DataError(BhpvasError):
    """The dataset cannot be used as given (missing column, unknown label, empty or bad file)."""


class ModelLoadError(BhpvasError):
    """The model cannot be loaded or is not a supported sequence classifier."""


class SchemeError(BhpvasError):
    """A pruning scheme is malformed or does not fit the model."""


class CacheError(BhpvasError):
    """A cache entry could not be written (for example the disk is full)."""


class OutOfMemory(BhpvasError):
    """The device ran out of memory even with the smallest batches."""


class OutputError(BhpvasError):
    """An output (pruned model, report, upload) could not be written; what was there before is kept."""
