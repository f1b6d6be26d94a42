"""Open tracks: a thin magicgui front-end over load_tracks and tracks_to_layers.

(No ``from __future__ import annotations`` here: napari injects the viewer only when the
``napari_viewer`` annotation is the real class, not a string.)

Work that may take seconds (reading, converting) runs in a napari ``thread_worker`` that
returns plain data; layers are created and added only on the main thread.
"""

from pathlib import Path

import napari
from magicgui import magic_factory
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from ...errors import SkelmaeError
from ..console import add_layer_tuples

TRACK_FILTER = "Pose tracks (*.slp *.h5 *.hdf5 *.csv *.csv.gz *.nc *.nwb)"


def _load(path: Path, fps: float, merge_fragments: bool, trails: bool):
    from ...identity import merge_fragmented_tracks
    from ...io import load_tracks
    from ..layers import tracks_to_layers

    tracks = load_tracks(path, fps=fps or None)
    if merge_fragments:
        tracks = merge_fragmented_tracks(tracks)
    return tracks, tracks_to_layers(tracks, trails=trails)


@magic_factory(
    call_button="Open",
    path={"label": "tracks file", "mode": "r", "filter": TRACK_FILTER},
    fps={"label": "fps (0 = from file/video)", "min": 0.0, "max": 100000.0, "step": 1.0},
    merge_fragments={"label": "join fragmented track ids"},
    trails={"label": "show trails"},
)
def open_tracks_widget(
    napari_viewer: napari.viewer.Viewer,
    path: Path = Path(""),
    fps: float = 0.0,
    merge_fragments: bool = False,
    trails: bool = False,
):
    """Open a SLEAP / DeepLabCut / movement / JABS / NWB tracks file over its video."""
    if not str(path) or not Path(path).is_file():
        show_error(f"Choose a tracks file first ('{path}' is not a file).")
        return
    def _done(result):
        tracks, layer_tuples = result
        add_layer_tuples(napari_viewer, layer_tuples)
        show_info(f"Opened {tracks!r}")

    def _failed(exc: Exception):
        show_error(str(exc) if isinstance(exc, SkelmaeError) else f"{type(exc).__name__}: {exc}")

    # "errored" connected at creation: napari then does not also re-raise the error in the
    # main thread
    worker = thread_worker(_load)(Path(path), fps, merge_fragments, trails, _start_thread=False,
                                  _connect={"returned": _done, "errored": _failed})
    worker.start()
    return worker  # the caller (a test, the console) may wait on it
