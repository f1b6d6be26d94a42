"""Export dock widget: the results of a points layer as files beside the video.

(No ``from __future__ import annotations``: napari injects the viewer only when the
``napari_viewer`` annotation is the real class.)

Thin over :func:`napari_skelmae.results.results_table` and
:func:`napari_skelmae.export.export_all`: the results table (parquet, CSV), SLEAP events and a
BORIS table, written all together in a worker from the layer's current points (so corrected
positions and identities are what is written) and the session's results for the layer.
"""

from pathlib import Path
from typing import Any

import napari
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...errors import SkelmaeError
from ._common import LayerBox, PathField, error_text, layer_snapshot, session, start_worker
from ._run import add_progress_and_status


def run_export(snapshot: tuple, results: Any, folder: Path | None,
               with_embeddings: bool) -> dict[str, Path]:
    """The worker: the results table of the layer's tracks, then every result file."""
    from ...export import export_all
    from ...results import results_table
    from ..layers import layers_to_tracks

    tracks = layers_to_tracks(snapshot)
    table = results_table(
        tracks,
        embeddings=results.embeddings if with_embeddings else None,
        clusters=results.clusters,
        cluster_names=None,
        behaviours=results.behaviours,
        behaviour_names=results.behaviour_names,
        probabilities=results.probabilities,
        model=results.model,
    )
    return export_all(tracks, table, folder=folder)


class ExportWidget(QWidget):
    """Dock widget: write a layer's results table and behaviour files."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.written: dict[str, Path] = {}
        self._succeeded = False
        outer = QVBoxLayout(self)
        form = QFormLayout()
        self.layer_box = LayerBox(napari_viewer)
        self.folder = PathField("empty: beside the video (else the tracks file)", "folder")
        self.with_embeddings = QCheckBox("embeddings in the table")
        self.with_embeddings.setChecked(True)
        form.addRow("points layer", self.layer_box)
        form.addRow("folder", self.folder)
        form.addRow("", self.with_embeddings)
        outer.addLayout(form)
        self.run_button = QPushButton("Export")
        self.run_button.clicked.connect(self.run)
        outer.addWidget(self.run_button)
        add_progress_and_status(self, outer)
        outer.addStretch(1)

    def run(self):
        """Start writing the files (returns the worker)."""
        if self.worker is not None:
            return None
        try:
            layer = self.layer_box.layer()
            results = session(self.viewer).results(layer)
            if results is None or (results.clusters is None and results.behaviours is None):
                raise SkelmaeError(f"Export: nothing to export for '{layer.name}' yet; run "
                                   "Embed & cluster or Classify on it first")
        except SkelmaeError as e:
            show_error(str(e))
            return None
        self.run_button.setEnabled(False)
        self._succeeded = False
        self.progress_bar.setRange(0, 0)
        self.status.setText("writing…")
        self.worker = start_worker(
            run_export, layer_snapshot(layer), results, self.folder.path(),
            self.with_embeddings.isChecked(), returned=self._on_returned,
            errored=self._on_errored, finished=self._on_finished)
        return self.worker

    def _on_returned(self, written: dict[str, Path]) -> None:
        self.written = dict(written)
        self._succeeded = True
        text = "wrote " + ", ".join(str(p) for p in written.values())
        self.status.setText(text)
        show_info(f"Export: {text}")

    def _on_errored(self, exc: BaseException) -> None:
        self.status.setText(f"failed: {error_text(exc)}")
        show_error(error_text(exc))

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.progress_bar.setRange(0, 1)  # full after a run that wrote its files, else empty
        self.progress_bar.setValue(1 if self._succeeded else 0)
