"""One-call helpers for the napari console and scripts (main thread only)."""

from __future__ import annotations

import os
from typing import Any

from ..tracks import PoseTracks


def add_layer_tuples(viewer, layer_tuples: list[tuple]) -> list:
    """Add LayerDataTuples to a viewer and return the layers."""
    from napari.layers import Layer

    return [viewer.add_layer(Layer.create(*t)) for t in layer_tuples if t[0] is not None]


def show_tracks(
    tracks: PoseTracks | str | os.PathLike, viewer=None, **layer_options: Any
) -> list:
    """Show tracks (or a tracks file) in ``viewer`` (the current one, or a new viewer).

    ``layer_options`` go to :func:`~napari_skelmae.napari.layers.tracks_to_layers`
    (e.g. ``trails=True``, ``color_by="keypoint"``). Returns the layers added.
    """
    import napari

    from ..io import load_tracks
    from .layers import tracks_to_layers

    if not isinstance(tracks, PoseTracks):
        tracks = load_tracks(tracks)
    if viewer is None:
        viewer = napari.current_viewer() or napari.Viewer()
    return add_layer_tuples(viewer, tracks_to_layers(tracks, **layer_options))
