"""Errors a user can cause, each carrying a message that names the file, key or value at fault."""


class SSCMAError(Exception):
    """Base class of errors meant to be shown to the user without a traceback."""


class ConfigError(SSCMAError, ValueError):
    """A config file, key or override is wrong."""


class DatasetError(SSCMAError, ValueError):
    """A dataset on disk does not have the layout or content the config expects."""


class ExportError(SSCMAError, ValueError):
    """A model cannot be exported (or an exported model cannot be used) as asked."""
