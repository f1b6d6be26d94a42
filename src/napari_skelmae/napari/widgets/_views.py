"""The ethogram and map views the analysis widgets fill (one of each per viewer)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _docked(viewer, cls) -> Any:
    """A view of class ``cls`` already docked in the viewer (e.g. opened from the menu)."""
    window = getattr(viewer, "window", None)
    docked = getattr(window, "dock_widgets", None)  # napari >= 0.6
    if docked is None:
        return None
    for widget in list(docked.values()):
        if isinstance(widget, cls):
            return widget
    return None


def _view(viewer, cls, area: str, name: str):
    """The docked view of this class, shown; else a new one, docked."""
    view = _docked(viewer, cls)
    if view is not None:
        dock = view.parent()
        if dock is not None and hasattr(dock, "show") and not dock.isVisible():
            dock.show()
        return view
    view = cls(viewer)
    viewer.window.add_dock_widget(view, name=name, area=area)
    return view


def ethogram_view(viewer):
    from ..views import EthogramView

    return _view(viewer, EthogramView, "bottom", "Ethogram")


def map_view(viewer):
    from ..views import EmbeddingMapView

    return _view(viewer, EmbeddingMapView, "right", "Embedding map")


def show_ethogram(viewer, tracks: Any, codes: np.ndarray, names: list, title: str,
                  source: tuple[str, str] | None = None) -> None:
    """``source``: the (points layer name, feature column) the codes were written to."""
    ethogram_view(viewer).set_data(codes, names, tracks.frame_index, tracks.individual_names,
                                   title=title, source=source)


def show_map(viewer, tracks: Any, xy: np.ndarray, codes: np.ndarray | None,
             names: list | None, method: str, title: str) -> None:
    from ..views.embedding_map import AXIS_NAMES

    n_frames, n_ind = xy.shape[:2]
    map_view(viewer).set_data(
        xy.reshape(-1, 2), None if codes is None else np.asarray(codes).reshape(-1), names,
        np.repeat(np.asarray(tracks.frame_index), n_ind),
        individuals=np.tile(np.arange(n_ind), n_frames),
        individual_names=list(tracks.individual_names), axis_names=AXIS_NAMES[method],
        title=title)
