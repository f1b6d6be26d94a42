"""Classify dock widget: behaviours from a few labels, on frozen embeddings.

(No ``from __future__ import annotations``: napari injects the viewer only when the
``napari_viewer`` annotation is the real class.)

Labels come from a file (BORIS, bouts CSV, per-frame CSV, SimBA: ``load_labels``), from
bouts labelled here while watching the video (the "Label bouts" panel,
:mod:`.labelling`), or from a categorical feature of the points layer. A worker embeds the
tracks if needed (progress bar, Cancel), trains the classifier with its grouped
cross-validation (``train_classifier``) and predicts every frame; the main thread puts the
predictions on the points (``behaviour`` feature, colours), shows the cross-validated F1 of
each behaviour next to chance, and fills the ethogram.
"""

import functools
import math
import threading
from pathlib import Path
from typing import Any

import napari
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...errors import SkelmaeError
from ..views.ethogram import RefreshingComboBox, category_columns, codes_from_points_layer
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
from ._views import show_ethogram
from .labelling import LABELS_COLUMN, LabellingPanel, labelled_bouts

KINDS = ("linear", "mlp")
#: the points feature the predictions go into
BEHAVIOUR_COLUMN = "behaviour"
FROM_FILE = "labels file"
#: the bouts of the "Label bouts" panel
LABELLED = "bouts labelled here"
LABEL_FILTER = "Behaviour labels (*.csv *.tsv *.txt)"
CLASSIFIER_FILTER = "napari-skelmae classifier (*.safetensors)"
#: columns of the F1 table: (header, cv_report column)
TABLE_COLUMNS = (("behaviour", "behaviour"), ("F1", "f1"), ("chance F1", "chance_f1"),
                 ("precision", "precision"), ("recall", "recall"), ("frames", "support"),
                 ("bouts", "bouts"))


def run_classify(snapshot: tuple, embeddings: Any, model: Any, model_path: Path | None,
                 labels: tuple, kind: str, cv: int | None, min_bout_frames: int | None,
                 output: Path | None, *, progress: Report | None = None,
                 cancel: threading.Event | None = None) -> dict[str, Any]:
    """The worker: tracks, embeddings (reused or computed), labels, classifier, predictions.

    ``labels`` is ``("file", path)``, ``("bouts", bouts table)`` or ``("codes", codes,
    names)``. ``progress(stage, done, total)`` hears of the embedding's batches and of the
    later stages; ``cancel`` stops the embedding before its next batch, or the run between
    stages (a SkelmaeError)."""
    from ...analysis.classify import train_classifier
    from ..layers import layers_to_tracks

    tracks = layers_to_tracks(snapshot)
    if model_path is not None:
        from ...model import load_model

        model, embeddings = load_model(model_path), None
    if embeddings is None:
        if model is None:
            raise SkelmaeError("Classify: no model; train one in the Pretrain widget, run "
                               "Embed & cluster, or choose a model file")
        embeddings = embed_with_progress(model, tracks, progress, cancel, "Classify")
    if progress is not None:
        progress("training", 0, 0)
    if labels[0] == "file":
        from ...analysis.labels import load_labels

        bouts = load_labels(labels[1], tracks=tracks)
        clf = train_classifier(embeddings, bouts, tracks=tracks, kind=kind, cv=cv)
    elif labels[0] == "bouts":
        clf = train_classifier(embeddings, labels[1], tracks=tracks, kind=kind, cv=cv)
    else:
        _, codes, names = labels
        clf = train_classifier(embeddings, codes, names, frame_index=tracks.frame_index,
                               kind=kind, cv=cv)
    check_cancel(cancel, "Classify")
    codes, probabilities = clf.predict(embeddings, tracks.frame_index,
                                       min_bout_frames=min_bout_frames)
    saved = clf.save(output) if output is not None else None
    return {"tracks": tracks, "model": model, "embeddings": embeddings, "classifier": clf,
            "codes": codes, "probabilities": probabilities, "saved": saved}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.2f}"
    return str(value)


class ClassifyWidget(RunWidget):
    """Dock widget: train a behaviour classifier from labels and predict every frame."""

    who = "Classify"

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        outer = QVBoxLayout(self)
        form = QFormLayout()
        self.layer_box = LayerBox(napari_viewer)
        self.labels_source = RefreshingComboBox(self._refresh_sources)
        self.labels_file = PathField("BORIS export, bouts or per-frame CSV, SimBA", "open",
                                     LABEL_FILTER)
        self.kind = QComboBox()
        self.kind.addItems(KINDS)
        self.cv = QSpinBox()
        self.cv.setRange(0, 20)
        self.cv.setValue(5)
        self.cv.setSpecialValueText("no cross-validation")
        self.min_bout = QSpinBox()
        self.min_bout.setRange(0, 1_000_000)
        self.min_bout.setSpecialValueText("off")
        self.model_file = PathField("empty: the model of Embed & cluster / Pretrain", "open",
                                    "napari-skelmae model (*.skelmae)")
        self.output = PathField("classifier file to write (optional)", "save",
                                CLASSIFIER_FILTER)
        form.addRow("points layer", self.layer_box)
        form.addRow("labels from", self.labels_source)
        form.addRow("labels file", self.labels_file)
        form.addRow("classifier", self.kind)
        form.addRow("CV folds", self.cv)
        form.addRow("min bout (frames)", self.min_bout)
        form.addRow("model file", self.model_file)
        form.addRow("save classifier", self.output)
        outer.addLayout(form)
        self.labelling_toggle = QToolButton()
        self.labelling_toggle.setText("Label bouts while watching the video")
        self.labelling_toggle.setCheckable(True)
        self.labelling_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.labelling_toggle.toggled.connect(self._show_labelling)
        outer.addWidget(self.labelling_toggle)
        self.labelling = LabellingPanel(napari_viewer, layer_box=self.layer_box)
        self.labelling.activated.connect(lambda: self._show_labelling(True))
        outer.addWidget(self.labelling, stretch=1)
        self._show_labelling(False)
        self.add_run_controls(outer, "Train && predict")
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([h for h, _ in TABLE_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        outer.addWidget(self.table, stretch=1)
        self.layer_box.currentIndexChanged.connect(self._refresh_sources)
        self.labels_source.currentTextChanged.connect(self._source_changed)
        self._refresh_sources()

    def _show_labelling(self, shown: bool) -> None:
        self.labelling.setVisible(shown)
        self.labelling_toggle.setArrowType(Qt.ArrowType.DownArrow if shown
                                           else Qt.ArrowType.RightArrow)
        if self.labelling_toggle.isChecked() != shown:
            self.labelling_toggle.setChecked(shown)

    def _source_changed(self, text: str) -> None:
        self.labels_file.setEnabled(text == FROM_FILE)
        if text == LABELLED:
            self._show_labelling(True)

    def _refresh_sources(self, index: int = 0) -> None:
        current = self.labels_source.currentText()
        self.labels_source.clear()
        self.labels_source.addItems([FROM_FILE, LABELLED])
        try:
            layer = self.layer_box.layer()
        except SkelmaeError:
            return
        for column in category_columns(layer):
            if column not in ("individual", "cluster", BEHAVIOUR_COLUMN, LABELS_COLUMN):
                self.labels_source.addItem(f"feature: {column}")
        self.labels_source.setCurrentIndex(max(self.labels_source.findText(current), 0))

    def _labels(self, layer) -> tuple:
        source = self.labels_source.currentText()
        if source == FROM_FILE:
            path = self.labels_file.path()
            if path is None:
                raise SkelmaeError("Classify: choose a labels file (or a labelled feature of "
                                   "the points layer)")
            return ("file", path)
        if source == LABELLED:
            bouts = labelled_bouts(layer)
            if bouts.empty:
                raise SkelmaeError(f"Classify: no bouts labelled on '{layer.name}' yet; "
                                   "label some with Start/End bout (or choose a labels file)")
            return ("bouts", bouts)
        data = codes_from_points_layer(layer, source.removeprefix("feature: "))
        return ("codes", data["codes"], data["names"])

    def run(self):
        """Start training and predicting (returns the worker)."""
        if self.worker is not None:
            return None
        try:
            layer = self.layer_box.layer()
            labels = self._labels(layer)
        except SkelmaeError as e:
            show_error(str(e))
            return None
        state = session(self.viewer)
        model_path = self.model_file.path()
        previous = state.results(layer)
        model = state.model if previous is None or previous.model is None else previous.model
        embeddings = previous.embeddings if previous is not None and model_path is None else None
        if model_path is None and model is None:
            show_error("Classify: no model; train one in the Pretrain widget, run Embed & "
                       "cluster, or choose a model file")
            return None
        cancel = self.begin_run(layer, "training" if embeddings is not None else "preparing",
                                "training…" if embeddings is not None else "embedding…")
        self.worker = start_worker(
            functools.partial(run_classify, progress=self.relay.progress.emit, cancel=cancel),
            layer_snapshot(layer), embeddings, model, model_path, labels,
            self.kind.currentText(), self.cv.value() or None, self.min_bout.value() or None,
            self.output.path(), returned=self._on_returned, errored=self._on_errored,
            finished=self._on_finished)
        return self.worker

    def _on_returned(self, result: dict[str, Any]) -> None:
        from ..layers import label_layers

        layer = self._layer
        self.result = result
        clf = result["classifier"]
        try:
            label_layers(layer, result["codes"], clf.names, column=BEHAVIOUR_COLUMN,
                         skeleton=skeleton_of(self.viewer, layer))
        except SkelmaeError as e:
            show_error(str(e))
            return
        self._succeeded = True
        self._fill_table(clf)
        state = session(self.viewer)
        results = state.results(layer)
        if results is None or results.model is not result["model"]:
            results = LayerResults(tracks=result["tracks"], model=result["model"],
                                   embeddings=result["embeddings"])
        results.behaviours = result["codes"]
        results.behaviour_names = list(clf.names)
        results.probabilities = result["probabilities"]
        results.classifier = clf
        state.set_results(layer, results)
        show_ethogram(self.viewer, result["tracks"], result["codes"], list(clf.names),
                      f"{layer.name}: behaviours ({clf.kind})",
                      source=(layer.name, BEHAVIOUR_COLUMN))
        saved = f"; saved to {result['saved']}" if result["saved"] else ""
        show_info(f"Classify: {self.status.text()}{saved}")

    def _fill_table(self, clf) -> None:
        report = clf.cv_report
        self.table.setRowCount(len(report))
        for r, row in enumerate(report.to_dict("records")):
            for c, (_, key) in enumerate(TABLE_COLUMNS):
                self.table.setItem(r, c, QTableWidgetItem(_cell(row.get(key, ""))))
        self.table.resizeColumnsToContents()
        f1 = clf.cv_summary.get("macro_f1")
        chance = clf.cv_summary.get("chance_macro_f1")
        if isinstance(f1, float) and math.isfinite(f1):
            self.status.setText(f"cross-validated macro F1 {f1:.2f} (chance {_cell(chance)}) "
                                 f"over {len(report)} behaviours")
        else:
            self.status.setText("trained without cross-validation (no F1 to show)")
