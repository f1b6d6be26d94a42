"""Label behaviour bouts while watching the video: the panel the Classify widget shows (and
that can be docked on its own: ``viewer.window.add_dock_widget(LabellingPanel(viewer))``).

Scrub to a bout's first frame, press "Start bout here" (or Shift-S on the canvas), scrub to
its last frame, press "End bout here" (Shift-E): the bout (individual, behaviour,
start_frame, stop_frame; inclusive video frames, the contract of
:mod:`napari_skelmae.analysis.bouts`) joins the table. The behaviour and individual are read
when End is pressed, so they can be chosen while the bout plays. Every change is validated
with :func:`~napari_skelmae.analysis.bouts.check_bouts` against the layer's individuals and
frames (a bad bout is a notification and is not added), put on the points as the categorical
feature ``labels`` (so the ethogram's column chooser offers it; coloured if asked) and drawn
in the ethogram.

The bouts of each points layer are kept here, per layer (:func:`labelled_bouts`), so the
Classify widget trains from them and several panels on one layer stay in step. Files are bouts
CSVs written atomically; :func:`napari_skelmae.analysis.labels.load_labels` reads them back.
"""

from __future__ import annotations

import os
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...analysis.bouts import BOUT_COLUMNS, bouts_to_frames, check_bouts
from ...errors import SkelmaeError, SkelmaeWarning
from ._common import LayerBox, skeleton_of, unwrap

__all__ = ["ALL_INDIVIDUALS", "END_KEY", "LABELS_COLUMN", "START_KEY", "LabellingPanel",
           "labelled_bouts", "set_labelled_bouts", "write_bouts_csv"]

#: viewer shortcuts; no napari layer or the viewer binds them (test_labelling checks)
START_KEY = "Shift-S"
END_KEY = "Shift-E"
#: the points feature the labelled bouts go into (the ethogram's column chooser lists it)
LABELS_COLUMN = "labels"
ALL_INDIVIDUALS = "all individuals"
BOUTS_FILTER = "Bouts CSV (*.csv)"
LABEL_FILTER = "Behaviour labels (*.csv *.tsv *.txt)"
#: the name label_layers keeps for "no label" (napari.layers.NO_LABEL); not a behaviour
_RESERVED = ("none",)


# ------------------------------------------------------------------------- Qt-free parts
def empty_bouts() -> pd.DataFrame:
    return pd.DataFrame({"individual": pd.Series(dtype=str), "behaviour": pd.Series(dtype=str),
                         "start_frame": pd.Series(dtype=np.int64),
                         "stop_frame": pd.Series(dtype=np.int64)})


def _sorted(bouts: pd.DataFrame) -> pd.DataFrame:
    return bouts[BOUT_COLUMNS].sort_values(["individual", "start_frame"],
                                           kind="stable").reset_index(drop=True)


def write_bouts_csv(bouts: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a bouts table as a CSV (individual, behaviour, start_frame, stop_frame;
    inclusive video frames) atomically; ``load_labels`` reads it back. Returns the path."""
    from ...io._common import atomic_output

    path = Path(path)
    bouts = _sorted(check_bouts(bouts, source=f"bouts for '{path}'"))
    with atomic_output(path, "bouts CSV") as tmp:
        bouts.to_csv(tmp, index=False)
    return path


def _facts(layer) -> dict:
    facts = layer.metadata.get("skelmae") or {}
    if facts.get("role") != "points":
        raise SkelmaeError(f"layer '{layer.name}' was not made by napari-skelmae")
    return facts


def layer_individuals(layer) -> list[str]:
    return [str(n) for n in _facts(layer)["individual_names"]]


def layer_frames(layer) -> np.ndarray:
    """The video frame of each row of the layer's tracks."""
    return np.asarray(_facts(layer)["frame_index"], dtype=np.int64)


def validate_bouts(bouts: pd.DataFrame, layer) -> pd.DataFrame:
    """``check_bouts`` against the layer's individuals and first..last tracked frame."""
    frames = layer_frames(layer)
    frame_range = (int(frames.min()), int(frames.max())) if len(frames) else None
    out = check_bouts(bouts, layer_individuals(layer), frame_range,
                      source=f"the bouts of '{layer.name}'")
    reserved = sorted(set(out["behaviour"]) & set(_RESERVED))
    if reserved:
        raise SkelmaeError(f"the bouts of '{layer.name}': {reserved[0]!r} is the name of "
                           "'no label'; call the behaviour something else")
    return _sorted(out)


# ------------------------------------------------------------------- bouts of each layer
class _Changes(QObject):
    changed = Signal(object)  # the (real) points layer whose bouts changed


_BOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CHANGES: _Changes | None = None


def _changes() -> _Changes:
    global _CHANGES
    if _CHANGES is None:
        _CHANGES = _Changes()
    return _CHANGES


def labelled_bouts(layer) -> pd.DataFrame:
    """A copy of the bouts labelled on ``layer`` in napari (empty table if none)."""
    found = _BOUTS.get(unwrap(layer))
    return empty_bouts() if found is None else found.copy()


def set_labelled_bouts(layer, bouts: pd.DataFrame) -> pd.DataFrame:
    """Validate and keep ``bouts`` as the layer's labelled bouts (SkelmaeError if invalid);
    every panel showing the layer refreshes."""
    layer = unwrap(layer)
    bouts = validate_bouts(bouts, layer)
    _BOUTS[layer] = bouts
    _changes().changed.emit(layer)
    return bouts.copy()


# ---------------------------------------------------------------------- viewer shortcuts
#: viewer -> the panels made for it, newest last (see _owner for which takes the keys)
_PANELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _owner(viewer) -> LabellingPanel | None:
    """The panel the shortcuts drive: the newest one on screen, else the newest alive (a
    panel in a closed dock is hidden, not gone)."""
    alive = []
    for ref in _PANELS.get(unwrap(viewer), []):
        panel = ref()
        try:
            if panel is not None:
                alive.append((panel.isVisible(), panel))  # RuntimeError once Qt's side is gone
        except RuntimeError:
            continue
    shown = [p for visible, p in alive if visible]
    return (shown or [p for _, p in alive] or [None])[-1]


def _press_start(viewer) -> None:
    panel = _owner(viewer)
    if panel is not None:
        panel.start_bout()


def _press_end(viewer) -> None:
    panel = _owner(viewer)
    if panel is not None:
        panel.end_bout()


def _register(viewer, panel: LabellingPanel) -> None:
    real = unwrap(viewer)
    _PANELS.setdefault(real, []).append(weakref.ref(panel))
    # module functions, not the panel's methods: the viewer's keymap holds no widget
    real.bind_key(START_KEY, _press_start, overwrite=True)
    real.bind_key(END_KEY, _press_end, overwrite=True)
    key = id(panel)

    def forget(*_: Any) -> None:  # the panel's Qt side is destroyed
        alive = [r for r in _PANELS.get(real, []) if r() is not None and id(r()) != key]
        _PANELS[real] = alive

    panel.destroyed.connect(forget)


# --------------------------------------------------------------------------- the panel
class LabellingPanel(QWidget):
    """Label bouts of the chosen points layer while scrubbing the video.

    ``layer_box``: the layer chooser to follow (the Classify widget's); by default the panel
    has its own."""

    #: the bouts table of the current layer changed (the new table)
    bouts_changed = Signal(object)
    #: Start or End was pressed (a host that hides the panel shows it)
    activated = Signal()

    def __init__(self, napari_viewer, layer_box: LayerBox | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.pending_start: int | None = None
        self._names: list[str] = []
        self._shown_layer: Any = None  # weakref to the layer the panel shows
        #: layer -> (colours before labelling, colours labelling set), points and skeleton
        self._colours: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.layer_box = layer_box if layer_box is not None else LayerBox(napari_viewer)
        if layer_box is None:
            form.addRow("points layer", self.layer_box)
        self.behaviour = QComboBox()
        self.behaviour.setEditable(True)
        self.behaviour.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.behaviour.lineEdit().setPlaceholderText("type a behaviour, e.g. grooming")
        self.individual = QComboBox()
        form.addRow("behaviour", self.behaviour)
        form.addRow("individual", self.individual)
        outer.addLayout(form)
        buttons = QHBoxLayout()
        self.start_button = QPushButton(f"Start bout here ({START_KEY})")
        self.end_button = QPushButton(f"End bout here ({END_KEY})")
        self.start_button.setToolTip("the current frame is the bout's first frame; the "
                                     f"shortcut {START_KEY} works on the canvas")
        self.end_button.setToolTip("the current frame is the bout's last frame (inclusive); "
                                   f"the shortcut {END_KEY} works on the canvas")
        self.start_button.clicked.connect(self.start_bout)
        self.end_button.clicked.connect(self.end_bout)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.end_button)
        outer.addLayout(buttons)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        self.table = QTableWidget(0, len(BOUT_COLUMNS))
        self.table.setHorizontalHeaderLabels(["individual", "behaviour", "first frame",
                                              "last frame"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(120)
        self.table.setToolTip("double-click a bout to go to its first frame")
        self.table.cellDoubleClicked.connect(self._go_to_row)
        outer.addWidget(self.table, stretch=1)
        rows = QHBoxLayout()
        self.delete_button = QPushButton("Delete selected")
        self.save_button = QPushButton("Save bouts…")
        self.load_button = QPushButton("Load bouts…")
        self.delete_button.clicked.connect(self.delete_selected)
        self.save_button.clicked.connect(self._save_clicked)
        self.load_button.clicked.connect(self._load_clicked)
        for b in (self.delete_button, self.save_button, self.load_button):
            rows.addWidget(b)
        outer.addLayout(rows)
        checks = QHBoxLayout()
        self.colour_points = QCheckBox("colour points by label")
        self.show_ethogram = QCheckBox("show in ethogram")
        self.show_ethogram.setChecked(True)
        self.colour_points.setToolTip("colour the points (and skeleton) by labelled "
                                      "behaviour; untick to give them their colours back")
        self.colour_points.toggled.connect(self._colour_toggled)
        checks.addWidget(self.colour_points)
        checks.addWidget(self.show_ethogram)
        outer.addLayout(checks)
        self.layer_box.currentIndexChanged.connect(self._layer_changed)
        # (PyQt drops a connection to a QObject's method when the object is destroyed)
        _changes().changed.connect(self._bouts_changed_elsewhere)
        _register(napari_viewer, self)
        self._layer_changed()

    # ---- state ---------------------------------------------------------------------
    def layer(self):
        return self.layer_box.layer()

    def bouts(self) -> pd.DataFrame:
        """The bouts of the current layer (a copy; empty if no layer)."""
        try:
            return labelled_bouts(self.layer())
        except SkelmaeError:
            return empty_bouts()

    def current_frame(self) -> int:
        return int(round(float(self.viewer.dims.point[0])))

    def _say(self, text: str) -> None:
        self.status.setText(text)
        try:
            self.viewer.status = text
        except Exception:  # noqa: BLE001 - the status bar is a nicety
            pass

    def _error(self, text: str) -> None:
        from napari.utils.notifications import show_error

        self._say(text)
        show_error(text)

    # ---- labelling -------------------------------------------------------------------
    def start_bout(self) -> int | None:
        """Mark the current frame as the first frame of the next bout."""
        self.activated.emit()
        try:
            self.layer()
        except SkelmaeError as e:
            self._error(str(e))
            return None
        self.pending_start = self.current_frame()
        self._say(f"bout starts at frame {self.pending_start}: go to its last frame and "
                  f"press End ({END_KEY})")
        return self.pending_start

    def end_bout(self) -> pd.DataFrame | None:
        """End the pending bout at the current frame (inclusive) for the chosen behaviour
        and individual(s); returns the bouts added, None when refused (notification)."""
        self.activated.emit()
        if self.pending_start is None:
            self._error(f"Label bouts: press Start ({START_KEY}) at the bout's first frame "
                        "first")
            return None
        behaviour = self.behaviour.currentText().strip()
        if not behaviour:
            self._error("Label bouts: type the behaviour's name first")
            return None
        try:
            layer = self.layer()
            who = self.individual.currentText()
            individuals = layer_individuals(layer) if who == ALL_INDIVIDUALS else [who]
        except SkelmaeError as e:
            self._error(str(e))
            return None
        first, last = sorted((self.pending_start, self.current_frame()))
        new = pd.DataFrame({"individual": individuals, "behaviour": behaviour,
                            "start_frame": first, "stop_frame": last})
        if not self._store(layer, pd.concat([labelled_bouts(layer), new], ignore_index=True)):
            return None  # the pending start stays: fix the behaviour/individual, press End
        self.pending_start = None
        self._remember(behaviour)
        self._say(f"{behaviour} of {who}: frames {first}-{last} ({last - first + 1} frames)")
        return new

    def delete_selected(self) -> int:
        """Delete the selected bouts; returns how many."""
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        if not rows:
            return 0
        try:
            layer = self.layer()
        except SkelmaeError as e:
            self._error(str(e))
            return 0
        bouts = labelled_bouts(layer)
        self._store(layer, bouts.drop(index=bouts.index[rows]).reset_index(drop=True))
        self._say(f"deleted {len(rows)} bout(s)")
        return len(rows)

    def _store(self, layer, bouts: pd.DataFrame) -> bool:
        try:
            set_labelled_bouts(layer, bouts)
        except SkelmaeError as e:
            self._error(str(e))
            return False
        return True

    def _remember(self, *names: str) -> None:
        for name in names:
            if name and name not in self._names:
                self._names.append(name)
                self.behaviour.addItem(name)

    # ---- files -----------------------------------------------------------------------
    def save_bouts(self, path: str | os.PathLike) -> Path | None:
        """Write the current layer's bouts as a bouts CSV (``.csv`` added if no suffix)."""
        bouts = self.bouts()
        if bouts.empty:
            self._error("Label bouts: no bouts to save yet")
            return None
        path = Path(path).expanduser()
        if not path.suffix:
            path = path.with_suffix(".csv")
        try:
            saved = write_bouts_csv(bouts, path)
        except SkelmaeError as e:
            self._error(str(e))
            return None
        from napari.utils.notifications import show_info

        self._say(f"saved {len(bouts)} bouts to {saved}")
        show_info(f"Label bouts: saved {len(bouts)} bouts to {saved}")
        return saved

    def load_bouts(self, path: str | os.PathLike) -> pd.DataFrame | None:
        """Add the bouts of a labels file (bouts CSV, BORIS, per-frame CSV: ``load_labels``)
        to the current layer's bouts; nothing changes when they do not fit (notification).
        Bouts already in the table are not added twice."""
        from napari.utils.notifications import show_warning

        from ...analysis.labels import load_labels
        from ..layers import layers_to_tracks

        try:
            layer = self.layer()
            tracks = layers_to_tracks(layer)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SkelmaeWarning)
                loaded = load_labels(Path(path).expanduser(), tracks=tracks)
        except SkelmaeError as e:
            self._error(str(e))
            return None
        for w in caught:
            if issubclass(w.category, SkelmaeWarning):
                show_warning(str(w.message))
        both = pd.concat([labelled_bouts(layer), loaded[BOUT_COLUMNS]], ignore_index=True)
        if not self._store(layer, both.drop_duplicates(ignore_index=True)):
            return None
        self._remember(*sorted(set(loaded["behaviour"])))
        self._say(f"loaded {len(loaded)} bouts from {path}")
        return loaded

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save bouts", "", BOUTS_FILTER)
        if path:
            self.save_bouts(path)

    def _load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load bouts", "", LABEL_FILTER)
        if path:
            self.load_bouts(path)

    # ---- showing ---------------------------------------------------------------------
    def _layer_changed(self, index: int = 0) -> None:
        current = self.individual.currentText()
        self.individual.clear()
        try:
            layer = unwrap(self.layer())
        except SkelmaeError:
            self.pending_start = None
            self._shown_layer = None
            self._fill_table(empty_bouts())
            return
        if self._shown_layer is None or self._shown_layer() is not layer:
            self.pending_start = None  # a start on another layer's video is no start here
            self._shown_layer = weakref.ref(layer)
        self.individual.addItems([*layer_individuals(layer), ALL_INDIVIDUALS])
        self.individual.setCurrentIndex(max(self.individual.findText(current), 0))
        bouts = labelled_bouts(layer)
        self._remember(*sorted(set(bouts["behaviour"])))
        self._fill_table(bouts)

    def _bouts_changed_elsewhere(self, layer) -> None:
        try:
            mine = self.layer()
        except (SkelmaeError, RuntimeError):
            return
        if unwrap(mine) is layer:
            self._publish()

    def _fill_table(self, bouts: pd.DataFrame) -> None:
        self.table.setRowCount(len(bouts))
        for r, row in enumerate(bouts[BOUT_COLUMNS].itertuples(index=False)):
            for c, value in enumerate(row):
                item = QTableWidgetItem(str(value))
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

    def _publish(self) -> None:
        """The table, the points' ``labels`` feature (and colours) and the ethogram."""
        try:
            layer = self.layer()
        except SkelmaeError:
            return
        bouts = labelled_bouts(layer)
        self._fill_table(bouts)
        self.bouts_changed.emit(bouts)
        from ..layers import label_layers
        from ._views import ethogram_view

        frames, individuals = layer_frames(layer), layer_individuals(layer)
        names = sorted(set(bouts["behaviour"]))  # the order Classify's predictions use
        skeleton = skeleton_of(self.viewer, layer)
        colour = self.colour_points.isChecked()
        real = unwrap(layer)
        if colour and real not in self._colours:
            self._colours[real] = (_colours_of(layer, skeleton), None)
        try:
            codes, names = bouts_to_frames(bouts, frames, individuals, names)
            label_layers(layer, codes, names, column=LABELS_COLUMN, skeleton=skeleton,
                         color=colour)
        except SkelmaeError as e:
            self._error(str(e))
            return
        if colour:
            self._colours[real] = (self._colours[real][0], _colours_of(layer, skeleton))
        if self.show_ethogram.isChecked() and getattr(self.viewer, "window", None) is not None:
            ethogram_view(self.viewer).set_data(codes, names, frames, individuals,
                                                title=f"{layer.name}: labelled bouts")

    def _colour_toggled(self, checked: bool) -> None:
        self._publish()
        if checked:
            return
        try:
            layer = unwrap(self.layer())
        except SkelmaeError:
            return
        before, ours = self._colours.pop(layer, (None, None))
        skeleton = skeleton_of(self.viewer, layer)
        if before is None or ours is None:
            return
        # give the colours back unless something else (e.g. Embed & cluster) recoloured them
        for target, old, mine, attribute in ((layer, before[0], ours[0], "face_color"),
                                             (skeleton, before[1], ours[1], "edge_color")):
            if target is None or old is None or mine is None:
                continue
            now = np.asarray(getattr(target, attribute))
            if now.shape == mine.shape == old.shape and np.array_equal(now, mine):
                setattr(target, attribute, old)

    def _go_to_row(self, row: int, column: int = 0) -> None:
        item = self.table.item(row, 2)
        if item is not None:
            self.viewer.dims.set_point(0, int(item.text()))


def _colours_of(points, skeleton) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Copies of the points' face colours and the skeleton's edge colours."""
    return (np.array(points.face_color, copy=True),
            None if skeleton is None else np.array(skeleton.edge_color, copy=True))
