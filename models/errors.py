"""The ML side's error types, in a module that imports nothing heavy, so callers (the CLI) can catch them cheaply."""


class DataError(ValueError):
    """A dataset cannot be read: the message names the file and, for a bad row, its line."""


class TrainingConfigError(ValueError):
    """A training option is out of range."""


class RegistryError(RuntimeError):
    """A registry operation cannot be done (unknown version, nothing to roll back to, ...)."""


class CorruptVersionError(RegistryError):
    """A version's files are incomplete, altered, or unsafe to load."""
