"""The plugin's own error types.

Every problem with a user's input surfaces as a :class:`SkelmaeError` (a ``ValueError``)
whose message names the file and the problem, so that napari can show it as a notification
and scripts can catch one type instead of a zoo of library exceptions.
"""

from __future__ import annotations

import os


class SkelmaeError(ValueError):
    """Base class of every error napari-skelmae raises on bad input."""


class TracksValidationError(SkelmaeError):
    """A :class:`~napari_skelmae.tracks.PoseTracks` was built from inconsistent arrays."""


class TracksFileError(SkelmaeError):
    """A file could not be read as pose tracks.

    The message always starts with the file's path, then says what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        where = f"'{self.path}'" if self.path is not None else "<no file>"
        super().__init__(f"Cannot read tracks from {where}: {problem}")


class UnsupportedFormatError(TracksFileError):
    """The file exists but holds no pose tracks napari-skelmae knows how to read."""


class SkelmaeWarning(UserWarning):
    """Something is off but work can go on (e.g. the video of a recording is missing)."""
