"""Pretrain dock widget: a thin Qt front-end over :func:`napari_skelmae.training.pretrain`.

(No ``from __future__ import annotations``: napari injects the viewer only when the
``napari_viewer`` annotation is the real class.)

Threads: on Start the main thread reads the widgets and copies the chosen points layers
(data, features, metadata); a napari ``thread_worker`` rebuilds the tracks, loads the files,
trains and saves the model, never touching a layer. Every :class:`Progress` report is
handed to the main thread through a Qt signal (queued across threads), which moves the
progress bar, the ETA and the live loss curve. Cancel sets a ``threading.Event`` that
``pretrain`` checks before every step. Errors become napari notifications.
"""

import dataclasses
import json
import math
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import napari
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...errors import SkelmaeError
from ..views._canvas import MplCanvas
from ..views.ethogram import plugin_points_layers
from ._common import error_text, layer_snapshot, session, start_worker

METHODS = ("mamp", "skeleton2vec", "skeletonmae", "msae")
#: every method has these presets (models/*.py); an unknown one is reported by pretrain
PRESETS = ("default", "small", "paper")
DEVICES = ("auto", "cpu", "cuda", "mps")
MODEL_FILTER = "napari-skelmae model (*.skelmae)"
TRACK_FILTER = "Pose tracks (*.slp *.h5 *.hdf5 *.csv *.csv.gz *.nc *.nwb)"
#: pretrain() arguments the options field may set (the others have their own field)
TRAIN_OPTIONS = (
    "precision", "seed", "val_fraction", "weight_decay", "warmup_fraction", "min_lr_ratio",
    "clip_grad", "augment", "checkpoint_dir", "checkpoint_every", "resume", "num_workers",
    "log_every",
)
#: options that have their own field in the widget
FIELD_OPTIONS = ("method", "preset", "epochs", "max_steps", "steps", "batch_size", "lr",
                 "device", "window_s", "tracks", "callbacks", "cancel")
_ROLE = Qt.ItemDataRole.UserRole
#: milliseconds between redraws of the live loss curve (reports can come 100 times a second)
REDRAW_MS = 250


# --------------------------------------------------------------- Qt-free parts (tested)
def parse_options(text: str) -> dict[str, Any]:
    """``"dim=32 depth=1 precision=float32"`` -> a dict; values are JSON when they parse
    as JSON, else strings (quote values with spaces: ``encoder='[[16, 16, 8]]'``)."""
    try:
        items = shlex.split(text or "")
    except ValueError as e:
        raise SkelmaeError(f"options: {e} in {text!r}") from None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SkelmaeError(f"options must be KEY=VALUE separated by spaces, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def split_options(options: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(window options, pretrain options, model options) of the options field."""
    from ...windows import WindowConfig

    window_keys = {f.name for f in dataclasses.fields(WindowConfig)}
    clash = sorted(set(options) & set(FIELD_OPTIONS))
    if clash:
        raise SkelmaeError(f"options: set {', '.join(clash)} in its own field, not in options")
    window = {k: v for k, v in options.items() if k in window_keys}
    train = {k: v for k, v in options.items() if k in TRAIN_OPTIONS}
    model = {k: v for k, v in options.items() if k not in window and k not in train}
    return window, train, model


@dataclasses.dataclass
class PretrainJob:
    """Everything one run needs, read from the widgets on the main thread."""

    layers: list[tuple]  # LayerDataTuples copied from the points layers
    files: list[Path]
    method: str = "mamp"
    preset: str | None = None
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 64
    lr: float | None = None
    window_s: float | None = None
    device: str = "auto"
    output: Path | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def _window(job: PretrainJob, window_options: dict, fps: float | None) -> dict | None:
    """The window of the run: the defaults for the first recording's fps, with the
    length from the field (stride half of it) and any window options on top."""
    if not job.window_s and not window_options:
        return None
    from ...windows import WindowConfig

    window = WindowConfig.for_fps(fps).to_dict() if fps else {}
    if job.window_s:
        window["window_s"] = job.window_s
        window["stride_s"] = job.window_s / 2
    window.update(window_options)
    return window


def run_pretrain(job: PretrainJob, cancel: threading.Event,
                 report: Callable[[Any], Any]) -> tuple[Any, Path | None, str | None]:
    """The worker: tracks from layer copies and files, pretrain, save.

    Returns ``(model, saved_path, save_error)``; a cancelled run is not saved (the widget
    keeps it, and its Save button writes it on request)."""
    from ...io import load_tracks
    from ...training import pretrain
    from ..layers import layers_to_tracks

    recordings = [layers_to_tracks(t) for t in job.layers]
    recordings += [load_tracks(path) for path in job.files]
    if not recordings:
        raise SkelmaeError("Pretrain: choose at least one tracks layer or file")
    window_options, train_options, model_options = split_options(job.options)
    model = pretrain(
        recordings, job.method, preset=job.preset,
        window=_window(job, window_options, recordings[0].fps),
        epochs=job.epochs, max_steps=job.max_steps, batch_size=job.batch_size, lr=job.lr,
        device=job.device, callbacks=[report], cancel=cancel,
        **train_options, **model_options,
    )
    if job.output is None or model.history.get("cancelled"):
        return model, None, None
    try:
        return model, model.save(job.output), None
    except (SkelmaeError, OSError) as e:
        return model, None, str(e)


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


# --------------------------------------------------------------------------- the widget
class _Relay(QObject):
    """Carries Progress reports from the worker thread to the main thread."""

    progress = Signal(object)


class PretrainWidget(QWidget):
    """Dock widget: pretrain a masked skeleton model on layers and/or files.

    After a run, ``model`` holds the :class:`~napari_skelmae.model.SkeletonModel` (also
    the session's model, which the Embed & cluster widget uses, and sent by the ``trained``
    signal) and ``reports`` the Progress reports it made.
    """

    trained = Signal(object)

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        self.reports: list[Any] = []
        self._eta: float | None = None
        self.curve_lines: dict[str, Any] = {}
        self._cancel = threading.Event()
        self._relay: _Relay | None = None
        self._build()
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._refresh_layers()
        self._draw_curve()

    # ---- layout ----------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.addWidget(QLabel("tracks (napari-skelmae points layers and files)"))
        self.sources = QListWidget()
        self.sources.setMaximumHeight(110)
        outer.addWidget(self.sources)
        files_row = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…")
        self.remove_file_button = QPushButton("Remove file")
        files_row.addWidget(self.add_files_button)
        files_row.addWidget(self.remove_file_button)
        outer.addLayout(files_row)
        self.add_files_button.clicked.connect(self._browse_files)
        self.remove_file_button.clicked.connect(self._remove_selected_file)

        form = QFormLayout()
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.length = QSpinBox()
        self.length.setRange(1, 10_000_000)
        self.length.setValue(2000)
        self.length_unit = QComboBox()
        self.length_unit.addItems(["steps", "epochs"])
        length_row = QHBoxLayout()
        length_row.addWidget(self.length, stretch=1)
        length_row.addWidget(self.length_unit)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 65536)
        self.batch_size.setValue(64)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(0.0, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setSpecialValueText("method default")
        self.window_s = QDoubleSpinBox()
        self.window_s.setDecimals(3)
        self.window_s.setRange(0.0, 3600.0)
        self.window_s.setSingleStep(0.1)
        self.window_s.setSpecialValueText("default for the fps")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.output = QLineEdit()
        self.output.setPlaceholderText("model file to write (.skelmae); empty: keep in memory")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse_output)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, stretch=1)
        output_row.addWidget(browse)
        self.options = QLineEdit()
        self.options.setPlaceholderText("e.g. dim=64 depth=2 precision=float32 seed=1")
        self.options.setToolTip("Model, window and training options as KEY=VALUE, separated "
                                "by spaces (values are JSON: encoder='[[16,16,8]]').")
        form.addRow("method", self.method)
        form.addRow("preset", self.preset)
        form.addRow("length", length_row)
        form.addRow("batch size", self.batch_size)
        form.addRow("learning rate", self.lr)
        form.addRow("window (s)", self.window_s)
        form.addRow("device", self.device)
        form.addRow("output", output_row)
        form.addRow("options", self.options)
        outer.addLayout(form)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.save_button = QPushButton("Save model")
        self.cancel_button.setEnabled(False)
        self.save_button.setEnabled(False)
        for b in (self.start_button, self.cancel_button, self.save_button):
            buttons.addWidget(b)
        outer.addLayout(buttons)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.save_model)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        outer.addWidget(self.progress_bar)
        self.eta_label = QLabel("")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.eta_label)
        outer.addWidget(self.status)
        self.plot = MplCanvas(self, toolbar=False, figsize=(4.0, 2.6))
        outer.addWidget(self.plot, stretch=1)
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self._draw_curve)

    # ---- sources ---------------------------------------------------------------------
    def _refresh_layers(self, event: Any = None) -> None:
        try:
            unchecked = {self.sources.item(i).data(_ROLE)[1]
                         for i in range(self.sources.count())
                         if self.sources.item(i).data(_ROLE)[0] == "layer"
                         and not _checked(self.sources.item(i))}
            for i in reversed(range(self.sources.count())):
                if self.sources.item(i).data(_ROLE)[0] == "layer":
                    self.sources.takeItem(i)
            for row, layer in enumerate(plugin_points_layers(self.viewer)):
                item = _source_item(f"layer: {layer.name}", ("layer", layer.name),
                                    layer.name not in unchecked)
                self.sources.insertItem(row, item)
        except RuntimeError:  # the Qt side of the widget is gone
            for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
                ev.disconnect(self._refresh_layers)

    def add_files(self, paths: list[str | Path]) -> None:
        """Add tracks files to the sources (checked)."""
        present = {self.sources.item(i).data(_ROLE)[1] for i in range(self.sources.count())
                   if self.sources.item(i).data(_ROLE)[0] == "file"}
        for path in paths:
            if str(path) not in present:
                self.sources.addItem(_source_item(f"file: {Path(path).name}",
                                                  ("file", str(path)), True, str(path)))

    def _browse_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Tracks files", "", TRACK_FILTER)
        self.add_files(paths)

    def _remove_selected_file(self) -> None:
        for item in self.sources.selectedItems():
            if item.data(_ROLE)[0] == "file":
                self.sources.takeItem(self.sources.row(item))

    def _browse_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Model file", "", MODEL_FILTER)
        if path:
            self.output.setText(path)

    def checked_sources(self) -> list[tuple[str, str]]:
        return [self.sources.item(i).data(_ROLE) for i in range(self.sources.count())
                if _checked(self.sources.item(i))]

    # ---- a run -----------------------------------------------------------------------
    def job(self) -> PretrainJob:
        """The run the widgets describe; copies of the chosen layers (main thread)."""
        layers, files = [], []
        for kind, name in self.checked_sources():
            if kind == "file":
                files.append(Path(name))
                continue
            if name not in self.viewer.layers:
                raise SkelmaeError(f"Pretrain: layer '{name}' is no longer in the viewer")
            layers.append(layer_snapshot(self.viewer.layers[name]))
        if not layers and not files:
            raise SkelmaeError("Pretrain: no tracks to train on; open a tracks file (a "
                               "napari-skelmae points layer) or add files, and tick them")
        steps = self.length_unit.currentText() == "steps"
        output = self.output.text().strip()
        return PretrainJob(
            layers=layers, files=files, method=self.method.currentText(),
            preset=self.preset.currentText() or None,
            epochs=None if steps else self.length.value(),
            max_steps=self.length.value() if steps else None,
            batch_size=self.batch_size.value(), lr=self.lr.value() or None,
            window_s=self.window_s.value() or None, device=self.device.currentText(),
            output=Path(output).expanduser() if output else None,
            options=parse_options(self.options.text()),
        )

    def start(self):
        """Start a run (returns its worker), or show why it cannot start."""
        if self.worker is not None:
            show_info("Pretrain: a run is already going; cancel it first")
            return None
        try:
            job = self.job()
            split_options(job.options)  # report option clashes before starting
        except SkelmaeError as e:
            show_error(str(e))
            return None
        self.reports = []
        self._eta = None
        self._cancel = cancel = threading.Event()
        self.destroyed.connect(lambda *_: cancel.set())  # the widget closed mid-run
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)  # busy until the first report
        self.status.setText(f"preparing windows and the first validation ({job.method})…")
        self.eta_label.setText("")
        self._draw_curve()
        self.worker = start_worker(run_pretrain, job, self._cancel, self._relay.progress.emit,
                                   returned=self._on_returned, errored=self._on_errored,
                                   finished=self._on_finished)
        return self.worker

    def cancel(self) -> None:
        """Stop the run before its next step (the model so far is kept, not saved)."""
        if self.worker is not None:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.status.setText("cancelling…")

    def save_model(self) -> None:
        """Write the last model to the output file."""
        output = self.output.text().strip()
        if self.model is None or not output:
            show_error("Pretrain: train a model and name an output file first")
            return
        try:
            path = self.model.save(Path(output).expanduser())
        except (SkelmaeError, OSError) as e:
            show_error(str(e))
            return
        show_info(f"Saved the model to {path}")

    # ---- main-thread handlers --------------------------------------------------------
    def _on_progress(self, p) -> None:
        self.reports.append(p)
        if self.progress_bar.maximum() != p.total_steps:
            self.progress_bar.setRange(0, p.total_steps)
        self.progress_bar.setValue(p.step)
        self.status.setText(f"step {p.step}/{p.total_steps} · epoch {p.epoch} · train "
                            f"{_fmt(p.train_loss)} · val {_fmt(p.val_loss)} · lr {p.lr:.2g}")
        if p.eta_s is not None:  # end-of-epoch reports have none: keep the last estimate
            self._eta = p.eta_s
        self.eta_label.setText(f"ETA {format_eta(self._eta)} · {p.windows_per_s:,.0f} "
                               "windows/s")
        if not self._redraw_timer.isActive():
            self._redraw_timer.start(REDRAW_MS)

    def _on_returned(self, result) -> None:
        model, saved, save_error = result
        self.model = model
        history = model.history
        self.save_button.setEnabled(True)
        if history.get("cancelled"):
            text = f"cancelled at step {history.get('steps')}; the model is kept, not saved"
        else:
            self.progress_bar.setValue(self.progress_bar.maximum())
            text = (f"finished: {history.get('steps')} steps in {history.get('wall_s', 0):.0f} s"
                    f", validation loss {_fmt(history.get('final_val_loss'))} (trivial "
                    f"{_fmt(history.get('trivial_val_loss'))})")
        if saved is not None:
            text += f"; saved to {saved}"
        self.status.setText(text)
        self._redraw_timer.stop()
        self._draw_curve(final=True)
        if save_error:
            show_error(save_error)
        else:
            show_info(f"Pretrain: {text}")
        session(self.viewer).set_model(model)  # for the Embed & cluster widget
        self.trained.emit(model)

    def _on_errored(self, exc: BaseException) -> None:
        self.status.setText(f"failed: {error_text(exc)}")
        show_error(error_text(exc))

    def _on_finished(self) -> None:
        self.worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)

    def _draw_curve(self, final: bool = False) -> None:
        """The loss curve from the live reports; at the end, with the validation losses at
        their exact steps and the trivial baseline from the model's history."""
        from ...plots import loss_series, plot_loss_curve

        ax = self.plot.new_axes()
        source: Any = self.reports
        if final and self.model is not None:
            history = self.model.history
            source = {"train": loss_series(self.reports)["train"],
                      "val": loss_series(history)["val"],
                      "trivial": history.get("trivial_val_loss")}
        self.curve_lines = plot_loss_curve(ax, source)
        self.plot.canvas.draw_idle()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._cancel.set()
        super().closeEvent(event)


# ---- list items ------------------------------------------------------------------------


def _source_item(text: str, data: tuple[str, str], checked: bool,
                 tooltip: str | None = None) -> QListWidgetItem:
    item = QListWidgetItem(text)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    item.setData(_ROLE, data)
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _checked(item: QListWidgetItem) -> bool:
    return item.checkState() == Qt.CheckState.Checked
