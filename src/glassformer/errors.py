"""glassformer's own error classes: one base class, so a caller (and the CLI) can tell our refusals from bugs.

Every error glassformer raises on purpose (bad input, a damaged file, a refused write) derives from
:class:`GlassformerError` and also from the built-in class it used to be (``ValueError``,
``FileExistsError`` ...), so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations


class GlassformerError(Exception):
    """Base class of every error glassformer raises on purpose; its message says what was expected."""


class UsageError(GlassformerError, ValueError):
    """An argument is out of range or of the wrong kind (the CLI exits with status 2 for these)."""


class OutputExistsError(GlassformerError, FileExistsError):
    """A write was refused because the target holds something glassformer must not replace."""


class IntegrityError(GlassformerError, ValueError):
    """A file of a saved artifact does not match the sha256 digest its manifest recorded."""


class ConfigError(GlassformerError, ValueError):
    """A configuration field has the wrong type or a value outside its range."""


class WrongModelError(UsageError):
    """The model named is a valid one, but not the kind this command or class needs (a GPT-2 given to `embed`)."""


class WriteFailedError(GlassformerError, OSError):
    """A file could not be written (the disk is full, a size limit was reached); nothing was replaced."""


class OutputBusyError(GlassformerError, BlockingIOError):
    """Another process is writing the same output directory (it holds the directory's lock)."""
