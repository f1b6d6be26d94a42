"""Embed & cluster dock widget: per-frame embeddings of a points layer's tracks, clusters of
them, the clusters on the points (colours) and in the ethogram and the embedding map.

(No ``from __future__ import annotations``: napari injects the viewer only when the
``napari_viewer`` annotation is the real class.)

Thin over the core: :func:`napari_skelmae.inference.embed`,
:func:`napari_skelmae.analysis.clustering.cluster` and
:func:`napari_skelmae.plots.embedding_map_coordinates` run in a worker on a copy of the layer;
:func:`napari_skelmae.napari.layers.label_layers` colours the layers on the main thread.
Embedding reports its progress (windows done of the total) through a Qt signal, queued to
the main thread, which moves the progress bar; Cancel sets a ``threading.Event`` that the
embedding checks before every batch of windows.
"""

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import napari
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...errors import SkelmaeError
from ._common import (
    LayerBox,
    LayerResults,
    PathField,
    error_text,
    layer_snapshot,
    session,
    skeleton_of,
    start_worker,
)
from ._views import show_ethogram, show_map

CLUSTER_METHODS = ("kmeans", "gmm", "hdbscan")
MAP_METHODS = ("auto", "pca", "umap")
MODEL_FILTER = "napari-skelmae model (*.skelmae)"
#: the points feature the clusters go into
CLUSTER_COLUMN = "cluster"


#: a worker's report: (stage, done, total); total 0 = no measure of progress
Report = Callable[[str, int, int], Any]


class ProgressRelay(QObject):
    """Carries a worker's progress reports to the main thread (the signal is queued across
    threads) and holds the Cancel event of the run."""

    progress = Signal(str, int, int)  # stage, done, total

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.cancel = threading.Event()

    def new_run(self) -> threading.Event:
        self.cancel = threading.Event()
        return self.cancel


def show_progress(bar: QProgressBar, stage: str, done: int, total: int) -> None:
    """Embedding as windows done of the total; other stages as a busy bar."""
    if total > 0:
        if bar.maximum() != total or bar.minimum() != 0:
            bar.setRange(0, total)
        bar.setValue(done)
        bar.setFormat(f"{stage} %v/%m windows")
    else:
        bar.setRange(0, 0)
        bar.setFormat(stage)


def finish_progress(bar: QProgressBar, full: bool, total: int = 0) -> None:
    """A determinate bar again (0..``total`` windows when the run embedded): full after a
    run that succeeded, empty otherwise."""
    bar.setRange(0, max(int(total), 1))
    bar.setValue(bar.maximum() if full else 0)
    bar.setFormat("embedding %v/%m windows" if total and full else "%p%")


def embed_with_progress(model: Any, tracks: Any, progress: Report | None,
                        cancel: threading.Event | None, who: str) -> Any:
    """``model.embed(tracks)`` reporting ("embedding", windows done, total); a cancelled
    run is a SkelmaeError saying so."""
    report = None if progress is None else (lambda done, total: progress("embedding", done,
                                                                          total))
    embeddings = model.embed(tracks, progress=report, cancel=cancel)
    check_cancel(cancel, who)
    return embeddings


def check_cancel(cancel: threading.Event | None, who: str) -> None:
    if cancel is not None and cancel.is_set():
        raise SkelmaeError(f"{who}: cancelled")


def run_embed_cluster(snapshot: tuple, model: Any, model_path: Path | None, method: str,
                      n_clusters: int, min_bout_frames: int | None,
                      map_method: str | None, *, progress: Report | None = None,
                      cancel: threading.Event | None = None) -> dict[str, Any]:
    """The worker: tracks from the layer copy, embeddings, clusters, map coordinates.

    ``progress(stage, done, total)`` hears of each batch of windows embedded and of the
    later stages; ``cancel`` stops the run before the next batch (a SkelmaeError)."""
    from ...analysis.clustering import cluster
    from ...plots import embedding_map_coordinates, umap_available
    from ..layers import layers_to_tracks

    def report(stage: str) -> None:
        check_cancel(cancel, "Embed & cluster")
        if progress is not None:
            progress(stage, 0, 0)

    if model_path is not None:
        from ...model import load_model

        model = load_model(model_path)
    if model is None:
        raise SkelmaeError("Embed & cluster: no model; train one in the Pretrain widget or "
                           "choose a model file")
    tracks = layers_to_tracks(snapshot)
    embeddings = embed_with_progress(model, tracks, progress, cancel, "Embed & cluster")
    report("clustering")
    labels, clusterer = cluster(embeddings, method,
                                None if method == "hdbscan" else n_clusters,
                                min_bout_frames=min_bout_frames,
                                frame_index=tracks.frame_index)
    xy = None
    if map_method is not None:
        report("embedding map")
        if map_method == "auto":
            map_method = "umap" if umap_available() else "pca"
        xy = embedding_map_coordinates(embeddings, method=map_method)
    n = max(int(clusterer.n_clusters), int(labels.max(initial=-1)) + 1)
    return {"tracks": tracks, "model": model, "embeddings": embeddings, "labels": labels,
            "names": [str(k) for k in range(n)], "clusterer": clusterer, "xy": xy,
            "map_method": map_method}


class EmbedClusterWidget(QWidget):
    """Dock widget: embed a points layer's tracks with a model and cluster the frames."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.result: dict[str, Any] | None = None
        outer = QVBoxLayout(self)
        form = QFormLayout()
        self.layer_box = LayerBox(napari_viewer)
        self.model_file = PathField("empty: the model of the Pretrain widget", "open",
                                    MODEL_FILTER)
        self.method = QComboBox()
        self.method.addItems(CLUSTER_METHODS)
        self.n_clusters = QSpinBox()
        self.n_clusters.setRange(2, 200)
        self.n_clusters.setValue(8)
        self.min_bout = QSpinBox()
        self.min_bout.setRange(0, 1_000_000)
        self.min_bout.setSpecialValueText("off")
        self.min_bout.setToolTip("merge cluster runs shorter than this many frames")
        self.map_method = QComboBox()
        self.map_method.addItems(MAP_METHODS)
        self.show_ethogram = QCheckBox("ethogram")
        self.show_ethogram.setChecked(True)
        self.show_map = QCheckBox("embedding map")
        self.show_map.setChecked(True)
        form.addRow("points layer", self.layer_box)
        form.addRow("model file", self.model_file)
        form.addRow("clustering", self.method)
        form.addRow("clusters", self.n_clusters)
        form.addRow("min bout (frames)", self.min_bout)
        form.addRow("map", self.map_method)
        form.addRow("show", self.show_ethogram)
        form.addRow("", self.show_map)
        outer.addLayout(form)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Embed && cluster")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        outer.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        outer.addWidget(self.progress_bar)
        self.relay = ProgressRelay(self)
        self.relay.progress.connect(self._on_progress)
        self._succeeded = False
        self._embed_total = 0
        self.status = QLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        outer.addStretch(1)
        self.method.currentTextChanged.connect(
            lambda m: self.n_clusters.setEnabled(m != "hdbscan"))

    def run(self):
        """Start embedding and clustering the chosen layer (returns the worker)."""
        if self.worker is not None:
            return None
        try:
            layer = self.layer_box.layer()
            model_path = self.model_file.path()
            model = session(self.viewer).model
            if model_path is None and model is None:
                raise SkelmaeError("Embed & cluster: no model; train one in the Pretrain "
                                   "widget or choose a model file")
        except SkelmaeError as e:
            show_error(str(e))
            return None
        self._layer = layer
        self._succeeded = False
        self._embed_total = 0
        cancel = self.relay.new_run()
        self.destroyed.connect(lambda *_: cancel.set())  # the widget closed mid-run
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        show_progress(self.progress_bar, "preparing", 0, 0)
        self.status.setText(f"embedding and clustering '{layer.name}'…")
        map_method = self.map_method.currentText() if self.show_map.isChecked() else None
        self.worker = start_worker(
            functools.partial(run_embed_cluster, progress=self.relay.progress.emit,
                              cancel=cancel),
            layer_snapshot(layer), model, model_path,
            self.method.currentText(), self.n_clusters.value(), self.min_bout.value() or None,
            map_method, returned=self._on_returned, errored=self._on_errored,
            finished=self._on_finished)
        return self.worker

    def cancel(self) -> None:
        """Stop the run before its next batch of windows (nothing on the layer changes)."""
        if self.worker is not None:
            self.relay.cancel.set()
            self.cancel_button.setEnabled(False)
            self.status.setText("cancelling…")

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        show_progress(self.progress_bar, stage, done, total)
        if total > 0:
            self._embed_total = total
            self.status.setText(f"{stage} '{self._layer.name}': {done}/{total} windows")
        else:
            self.status.setText(f"{stage}…")

    def _on_returned(self, result: dict[str, Any]) -> None:
        from ..layers import label_layers

        layer = self._layer
        self.result = result
        try:
            label_layers(layer, result["labels"], result["names"], column=CLUSTER_COLUMN,
                         skeleton=skeleton_of(self.viewer, layer))
        except SkelmaeError as e:
            show_error(str(e))
            return
        self._succeeded = True
        state = session(self.viewer)
        previous = state.results(layer)
        results = LayerResults(tracks=result["tracks"], model=result["model"],
                               embeddings=result["embeddings"], clusters=result["labels"],
                               cluster_names=result["names"], clusterer=result["clusterer"],
                               map_xy=result["xy"], map_method=result["map_method"])
        if previous is not None and previous.model is result["model"]:
            # behaviours predicted from the same embeddings stay valid
            results.behaviours = previous.behaviours
            results.behaviour_names = previous.behaviour_names
            results.probabilities = previous.probabilities
            results.classifier = previous.classifier
        state.set_results(layer, results)
        if state.model is not result["model"]:
            state.set_model(result["model"])
        tracks, labels, names = result["tracks"], result["labels"], result["names"]
        title = f"{layer.name}: clusters ({result['clusterer'].method})"
        if self.show_ethogram.isChecked():
            show_ethogram(self.viewer, tracks, labels, names, title)
        if result["xy"] is not None:
            show_map(self.viewer, tracks, result["xy"], labels, names, result["map_method"],
                     title)
        counts = [int((labels == k).sum()) for k in range(len(names))]
        text = (f"{len(names)} clusters on {int((labels >= 0).sum())} animal-frames "
                f"(largest {max(counts) if counts else 0}); colours on '{layer.name}'")
        self.status.setText(text)
        show_info(f"Embed & cluster: {text}")

    def _on_errored(self, exc: BaseException) -> None:
        if self.relay.cancel.is_set() and "cancelled" in str(exc):
            self.status.setText("cancelled; the layer is unchanged")
            show_info("Embed & cluster: cancelled")
            return
        self.status.setText(f"failed: {error_text(exc)}")
        show_error(error_text(exc))

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        finish_progress(self.progress_bar, self._succeeded, self._embed_total)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.relay.cancel.set()
        super().closeEvent(event)
