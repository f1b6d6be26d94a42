"""What the dock widgets share: the plugin's points layers, layer copies for workers, the
per-viewer session (the model and the results of each points layer), workers, errors."""

from __future__ import annotations

import copy
import dataclasses
import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget

from ...errors import SkelmaeError
from ..views.ethogram import plugin_points_layers

__all__ = ["LayerBox", "LayerResults", "PathField", "Session", "error_text", "layer_snapshot",
           "session", "skeleton_of", "start_worker", "unwrap"]

logger = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """Our errors as they are (they name the file and the problem); others with their type."""
    return str(exc) if isinstance(exc, SkelmaeError) else f"{type(exc).__name__}: {exc}"


def layer_snapshot(layer) -> tuple:
    """A copy of a points layer as a LayerDataTuple, for a worker (which must not touch
    layers): ``layers_to_tracks`` accepts it as it accepts the layer."""
    return (np.array(layer.data, copy=True),
            {"features": layer.features.copy(), "metadata": copy.deepcopy(dict(layer.metadata))},
            "points")


def skeleton_of(viewer, points) -> Any:
    """The skeleton (Vectors) layer drawn with ``points`` by tracks_to_layers, if present."""
    base = points.name[: -len(" points")] if points.name.endswith(" points") else points.name
    facts = points.metadata.get("skelmae") or {}
    for layer in unwrap(viewer).layers:
        meta = layer.metadata.get("skelmae") if isinstance(layer.metadata, dict) else None
        if (isinstance(meta, dict) and meta.get("role") == "skeleton"
                and layer.name == f"{base} skeleton"
                and meta.get("keypoint_names") == facts.get("keypoint_names")):
            return layer
    return None


def start_worker(func: Callable, *args: Any, returned: Callable, errored: Callable,
                 finished: Callable | None = None, warned: Callable | None = None):
    """Run ``func(*args)`` in a napari thread_worker with these handlers (main thread).

    Connecting ``errored`` at creation also keeps napari from re-raising the error in the
    main thread; warnings in the worker come to ``warned`` (default: a notification)."""
    from napari.qt.threading import thread_worker

    connect = {"returned": returned, "errored": errored, "warned": warned or _notify_warning}
    if finished is not None:
        connect["finished"] = finished
    worker = thread_worker(func)(*args, _start_thread=False, _connect=connect)
    worker.start()
    return worker


def _notify_warning(args: tuple) -> None:
    """Our warnings (meant for the user) as notifications; library warnings to the log."""
    from napari.utils.notifications import show_warning

    from ...errors import SkelmaeWarning

    message = args[0] if args else ""
    if isinstance(message, SkelmaeWarning):
        show_warning(str(message))
    else:
        logger.info("warning in a worker: %s", message)


# ------------------------------------------------------------------------------ session
@dataclasses.dataclass
class LayerResults:
    """What the analysis found for one points layer (its tracks' rows x individuals)."""

    tracks: Any
    model: Any = None
    embeddings: Any = None
    clusters: np.ndarray | None = None
    cluster_names: list[str] | None = None
    clusterer: Any = None
    map_xy: np.ndarray | None = None
    map_method: str | None = None
    behaviours: np.ndarray | None = None
    behaviour_names: list[str] | None = None
    probabilities: np.ndarray | None = None
    classifier: Any = None


class Session(QObject):
    """The state the widgets of one viewer share: the latest model (Pretrain, or a file the
    Embed widget loaded) and the results of each points layer."""

    model_changed = Signal(object)
    results_changed = Signal(object)  # the points layer

    def __init__(self):
        super().__init__()
        self.model = None
        self._results: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def set_model(self, model) -> None:
        self.model = model
        self.model_changed.emit(model)

    def results(self, layer) -> LayerResults | None:
        return self._results.get(unwrap(layer))

    def set_results(self, layer, results: LayerResults) -> None:
        self._results[unwrap(layer)] = results
        self.results_changed.emit(layer)


_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def unwrap(obj: Any) -> Any:
    """The object behind napari's PublicOnlyProxy (plugin widgets get the viewer, and every
    layer reached through it, as a new proxy each time: a weak key must be the real one)."""
    return getattr(obj, "__wrapped__", obj)


def session(viewer) -> Session:
    """The session of ``viewer`` (made on first use, gone with the viewer)."""
    viewer = unwrap(viewer)
    found = _SESSIONS.get(viewer)
    if found is None:
        found = _SESSIONS[viewer] = Session()
    return found


# ------------------------------------------------------------------------------ widgets
class LayerBox(QComboBox):
    """The viewer's napari-skelmae points layers, kept up to date."""

    def __init__(self, viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self.refresh)
        self.refresh()

    def refresh(self, event: Any = None) -> None:
        try:
            current = self.currentText()
            self.blockSignals(True)
            self.clear()
            self.addItems([layer.name for layer in plugin_points_layers(self.viewer)])
            self.setCurrentIndex(max(self.findText(current), 0))
            self.blockSignals(False)
            self.currentIndexChanged.emit(self.currentIndex())
        except RuntimeError:  # the Qt side is gone: stop listening
            for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
                ev.disconnect(self.refresh)

    def layer(self):
        """The chosen layer (the real one, not napari's proxy: ``label_layers`` checks its
        type), or a SkelmaeError saying there is none."""
        name = self.currentText()
        if not name or name not in self.viewer.layers:
            raise SkelmaeError("no napari-skelmae points layer chosen: open a tracks file first")
        return unwrap(self.viewer.layers[name])


class PathField(QWidget):
    """A line edit with a browse button (open file, save file or folder)."""

    def __init__(self, placeholder: str = "", mode: str = "open", filter: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.mode, self.filter = mode, filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        button = QPushButton("…")
        button.setMaximumWidth(30)
        button.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, stretch=1)
        row.addWidget(button)

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def setText(self, text: str) -> None:  # noqa: N802 - Qt style, like QLineEdit
        self.edit.setText(str(text))

    def _browse(self) -> None:
        if self.mode == "folder":
            path = QFileDialog.getExistingDirectory(self, "Folder")
        elif self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(self, "File", "", self.filter)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "File", "", self.filter)
        if path:
            self.edit.setText(path)

