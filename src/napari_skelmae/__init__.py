"""napari-skelmae: from SLEAP and DeepLabCut keypoint tracks to behaviour, in napari.

The public API is imported lazily so that ``import napari_skelmae`` stays fast and never
pulls in Qt, napari or torch until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_API = {
    "PoseTracks": "tracks",
    "SkelmaeError": "errors",
    "TracksFileError": "errors",
    "TracksValidationError": "errors",
    "SkelmaeWarning": "errors",
    "load_tracks": "io",
    "detect_format": "io",
    "merge_fragmented_tracks": "identity",
    "sample_tracks": "sample_data",
    "tracks_to_layers": "napari.layers",
    "layers_to_tracks": "napari.layers",
    "show_tracks": "napari.console",
    "VideoReader": "video",
    "find_video": "video",
}

__all__ = sorted(_API) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .errors import (
        SkelmaeError,
        SkelmaeWarning,
        TracksFileError,
        TracksValidationError,
    )
    from .identity import merge_fragmented_tracks
    from .io import detect_format, load_tracks
    from .napari.console import show_tracks
    from .napari.layers import layers_to_tracks, tracks_to_layers
    from .sample_data import sample_tracks
    from .tracks import PoseTracks
    from .video import VideoReader, find_video


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'napari_skelmae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
