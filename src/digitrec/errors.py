"""The project's own exceptions. Raised deep, turned into a message at the edge (CLI, API)."""


class DigitrecError(Exception):
    """Base class: its message is written for the user and says what to do."""


class ConfigError(DigitrecError):
    """A setting that cannot be used (unknown preset, bad number)."""


class DataError(DigitrecError):
    """A data file or folder that is missing, truncated, corrupted or unreachable."""


class BadImageError(DigitrecError):
    """A picture that cannot be read: missing, unreadable, or not an image."""


class EmptyImageError(BadImageError):
    """A picture with no ink on it: nothing to recognise."""


class ModelError(DigitrecError):
    """A model file that is missing or is not a digitrec model."""


class OutputError(DigitrecError):
    """A place we cannot write to: a folder that does not exist, a folder where a file goes."""


class OutputExistsError(OutputError):
    """A file we would overwrite without --force."""
