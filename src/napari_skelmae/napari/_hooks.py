"""npe2 hooks: reader, writer and sample data. Thin: every one calls the core.

A bad file never crashes napari and never leaves half-made layers: the reader turns our
errors into a napari error notification and returns napari's "nothing to add" sentinel.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import SkelmaeError, SkelmaeWarning

#: suffixes we claim; the content is sniffed later (several formats share .h5/.csv)
TRACK_SUFFIXES = (".slp", ".h5", ".hdf5", ".csv", ".csv.gz", ".nc", ".nwb")
WRITE_SUFFIXES = (".nc", ".csv", ".h5")


def get_reader(path: str | list[str]):
    """Return the reader for one tracks file, or None so napari asks other plugins."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, (str, os.PathLike)):
        return None
    if not str(path).lower().endswith(TRACK_SUFFIXES):
        return None
    return read_tracks_layers


def read_tracks_layers(path: str | list[str], **layer_options: Any) -> list[tuple]:
    """Read tracks and return points, skeleton and video layers (LayerDataTuples)."""
    from ..io import load_tracks
    from .layers import tracks_to_layers

    if isinstance(path, list):
        path = path[0]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SkelmaeWarning)
            tracks = load_tracks(path)
            layers = tracks_to_layers(tracks, **layer_options)
        for w in caught:
            _notify_warning(str(w.message))
        return layers
    except SkelmaeError as e:
        _notify_error(str(e))
        return [(None,)]


def write_points(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a points layer made by this plugin back to a tracks file (.nc, .csv, .h5)."""
    from .layers import layers_to_tracks

    tracks = layers_to_tracks((data, attributes, "points"))
    suffix = Path(path).suffix.lower()
    if suffix == ".nc":
        from ..io.movement import write
    elif suffix in (".csv", ".h5"):
        from ..io.dlc import write
    else:
        raise SkelmaeError(f"Cannot write '{path}': use one of {', '.join(WRITE_SUFFIXES)}")
    write(tracks, path)
    return [str(path)]


def make_sample_data() -> list[tuple]:
    """The bundled two-fly recording as points, skeleton and video layers."""
    from ..sample_data import sample_tracks
    from .layers import tracks_to_layers

    return tracks_to_layers(sample_tracks())


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def _notify_warning(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)
