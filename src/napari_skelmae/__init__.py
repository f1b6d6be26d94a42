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
    # pretraining and models
    "pretrain": "training",
    "WindowConfig": "windows",
    "SkeletonModel": "model",
    "load_model": "model",
    "embed": "inference",
    "Embeddings": "embeddings",
    # behaviour analysis
    "cluster": "analysis.clustering",
    "load_clusterer": "analysis.clustering",
    "score_cluster_counts": "analysis.clustering",
    "load_labels": "analysis.labels",
    "train_classifier": "analysis.classify",
    "fine_tune_classifier": "analysis.classify",
    "load_classifier": "analysis.classify",
    "frames_to_bouts": "analysis.bouts",
    "bouts_to_frames": "analysis.bouts",
    # results and files
    "results_table": "results",
    "results_from_table": "results",
    "export_all": "export",
    "write_results": "export",
    "read_results": "export",
    # napari
    "label_layers": "napari.layers",
    "cluster_layer": "napari.console",
    "classify_layer": "napari.console",
    "export_layer": "napari.console",
}

__all__ = sorted(_API) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .analysis.bouts import bouts_to_frames, frames_to_bouts
    from .analysis.classify import fine_tune_classifier, load_classifier, train_classifier
    from .analysis.clustering import cluster, load_clusterer, score_cluster_counts
    from .analysis.labels import load_labels
    from .embeddings import Embeddings
    from .errors import (
        SkelmaeError,
        SkelmaeWarning,
        TracksFileError,
        TracksValidationError,
    )
    from .export import export_all, read_results, write_results
    from .identity import merge_fragmented_tracks
    from .inference import embed
    from .io import detect_format, load_tracks
    from .model import SkeletonModel, load_model
    from .napari.console import classify_layer, cluster_layer, export_layer, show_tracks
    from .napari.layers import label_layers, layers_to_tracks, tracks_to_layers
    from .results import results_from_table, results_table
    from .sample_data import sample_tracks
    from .tracks import PoseTracks
    from .training import pretrain
    from .video import VideoReader, find_video
    from .windows import WindowConfig


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'napari_skelmae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
