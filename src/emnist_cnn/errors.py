"""One family of errors: every problem a user can cause (a bad file, flag, image or model) is an EmnistCnnError
whose message names the file or field, what was expected and what was found. The CLI prints it and exits 2; the
server answers 4xx. Anything else escaping is a bug."""
from __future__ import annotations


class EmnistCnnError(ValueError):
    """Base class; a ValueError so that `except ValueError` in user code keeps working."""


class ConfigError(EmnistCnnError):
    """A configuration field out of range, of the wrong type, or naming something that does not exist; `field`,
    where one option is at fault, names it (the server puts it in its 422's loc)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class DataError(EmnistCnnError):
    """Bad or missing data; the message names the file and what is wrong."""


class ModelFileError(EmnistCnnError):
    """A model path or name that cannot be loaded; the message says why."""


class ImageError(EmnistCnnError):
    """An image that cannot be recognised; the message says why."""


class RunError(EmnistCnnError):
    """A run directory that cannot be resumed: a missing or damaged file, named in the message."""


class ReportError(EmnistCnnError):
    """A run directory the report cannot be written for; the message names the file."""
