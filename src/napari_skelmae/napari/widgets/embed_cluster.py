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
from pathlib import Path
from typing import Any

import napari
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QSpinBox, QVBoxLayout, QWidget

from ...errors import SkelmaeError
from ._common import (
    LayerBox,
    LayerResults,
    PathField,
    layer_snapshot,
    session,
    skeleton_of,
    start_worker,
)
from ._run import Report, RunWidget, check_cancel, embed_with_progress
from ._views import show_ethogram, show_map

CLUSTER_METHODS = ("kmeans", "gmm", "hdbscan")
MAP_METHODS = ("auto", "pca", "umap")
MODEL_FILTER = "napari-skelmae model (*.skelmae)"
CLUSTERER_FILTER = "napari-skelmae clusterer (*.clusterer)"
#: the points feature the clusters go into
CLUSTER_COLUMN = "cluster"


def run_embed_cluster(snapshot: tuple, model: Any, model_path: Path | None, method: str,
                      n_clusters: int, min_bout_frames: int | None,
                      map_method: str | None, *, progress: Report | None = None,
                      cancel: threading.Event | None = None,
                      clusterer_path: Path | None = None,
                      save_clusterer: Path | None = None) -> dict[str, Any]:
    """The worker: tracks from the layer copy, embeddings, clusters, map coordinates.

    ``clusterer_path``: apply that saved clusterer instead of fitting one (the same clusters
    on a new recording; it refuses embeddings of another model); ``save_clusterer``: write
    the fitted one there. ``progress(stage, done, total)`` hears of each batch of windows
    embedded and of the later stages; ``cancel`` stops the run before the next batch (a
    SkelmaeError)."""
    from ...analysis.clustering import cluster, load_clusterer
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
    if clusterer_path is not None:
        clusterer = load_clusterer(clusterer_path)
        labels = clusterer.predict(embeddings, tracks.frame_index,
                                   min_bout_frames=min_bout_frames or "fitted")
    else:
        labels, clusterer = cluster(embeddings, method,
                                    None if method == "hdbscan" else n_clusters,
                                    min_bout_frames=min_bout_frames,
                                    frame_index=tracks.frame_index)
    saved = None
    if save_clusterer is not None and clusterer_path is None:
        saved = clusterer.save(save_clusterer)
    xy = None
    if map_method is not None:
        report("embedding map")
        if map_method == "auto":
            map_method = "umap" if umap_available() else "pca"
        xy = embedding_map_coordinates(embeddings, method=map_method)
    n = max(int(clusterer.n_clusters), int(labels.max(initial=-1)) + 1)
    return {"tracks": tracks, "model": model, "embeddings": embeddings, "labels": labels,
            "names": [str(k) for k in range(n)], "clusterer": clusterer, "xy": xy,
            "map_method": map_method, "saved": saved}


class EmbedClusterWidget(RunWidget):
    """Dock widget: embed a points layer's tracks with a model and cluster the frames."""

    who = "Embed & cluster"

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
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
        self.clusterer_file = PathField("empty: fit new clusters", "open", CLUSTERER_FILTER)
        self.clusterer_file.setToolTip(
            "a clusterer saved from another recording: the same clusters here")
        self.save_clusterer = PathField("clusterer file to write (optional)", "save",
                                        CLUSTERER_FILTER)
        form.addRow("points layer", self.layer_box)
        form.addRow("model file", self.model_file)
        form.addRow("apply clusterer", self.clusterer_file)
        form.addRow("save clusterer", self.save_clusterer)
        form.addRow("clustering", self.method)
        form.addRow("clusters", self.n_clusters)
        form.addRow("min bout (frames)", self.min_bout)
        form.addRow("map", self.map_method)
        form.addRow("show", self.show_ethogram)
        form.addRow("", self.show_map)
        outer.addLayout(form)
        self.add_run_controls(outer, "Embed && cluster")
        outer.addStretch(1)
        self.method.currentTextChanged.connect(lambda *_: self._enable_fit_options())
        self.clusterer_file.edit.textChanged.connect(lambda *_: self._enable_fit_options())

    def _enable_fit_options(self) -> None:
        """Fitting options mean nothing when a saved clusterer is applied."""
        fitting = self.clusterer_file.path() is None
        for widget in (self.method, self.save_clusterer):
            widget.setEnabled(fitting)
        self.n_clusters.setEnabled(fitting and self.method.currentText() != "hdbscan")

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
        cancel = self.begin_run(layer, "preparing",
                                f"embedding and clustering '{layer.name}'…")
        map_method = self.map_method.currentText() if self.show_map.isChecked() else None
        self.worker = start_worker(
            functools.partial(run_embed_cluster, progress=self.relay.progress.emit,
                              cancel=cancel, clusterer_path=self.clusterer_file.path(),
                              save_clusterer=self.save_clusterer.path()),
            layer_snapshot(layer), model, model_path,
            self.method.currentText(), self.n_clusters.value(), self.min_bout.value() or None,
            map_method, returned=self._on_returned, errored=self._on_errored,
            finished=self._on_finished)
        return self.worker

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
            show_ethogram(self.viewer, tracks, labels, names, title,
                          source=(layer.name, CLUSTER_COLUMN))
        if result["xy"] is not None:
            show_map(self.viewer, tracks, result["xy"], labels, names, result["map_method"],
                     title)
        counts = [int((labels == k).sum()) for k in range(len(names))]
        text = (f"{len(names)} clusters on {int((labels >= 0).sum())} animal-frames "
                f"(largest {max(counts) if counts else 0}); colours on '{layer.name}'")
        if result.get("saved") is not None:
            text += f"; clusterer saved to {result['saved']}"
        self.status.setText(text)
        show_info(f"Embed & cluster: {text}")
