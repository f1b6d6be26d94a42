"""One cancellable worker run per analysis widget (Embed & cluster, Classify).

:class:`RunWidget` holds what those widgets share: the Run and Cancel buttons, a progress bar
fed by a :class:`ProgressRelay` (a worker's reports queued to the main thread; embedding
reports windows done of the total, later stages show a busy bar), the status line, and the
cancel ``threading.Event`` that embedding checks before every batch of windows. A subclass
builds its form, then calls :meth:`RunWidget.add_run_controls`, and starts its worker with
:meth:`RunWidget.begin_run`.
"""

import threading
from collections.abc import Callable
from typing import Any

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ...errors import SkelmaeError
from ._common import error_text

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


def add_progress_and_status(widget: QWidget, outer: QVBoxLayout) -> None:
    """``widget.progress_bar`` (idle: empty) and ``widget.status`` (a wrapping line) at the
    bottom of ``outer``: what every widget that runs a worker shows."""
    widget.progress_bar = QProgressBar()
    widget.progress_bar.setRange(0, 1)
    outer.addWidget(widget.progress_bar)
    widget.status = QLabel("")
    widget.status.setWordWrap(True)
    outer.addWidget(widget.status)


class RunWidget(QWidget):
    """Base of a dock widget that runs one cancellable worker on a points layer."""

    #: the widget's name in messages ("Embed & cluster")
    who = "run"

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.result: dict[str, Any] | None = None
        self._layer = None
        self._succeeded = False
        self._embed_total = 0
        self.relay = ProgressRelay(self)
        self.relay.progress.connect(self._on_progress)

    def add_run_controls(self, outer: QVBoxLayout, run_text: str) -> None:
        """Run / Cancel buttons, the progress bar and the status line, below the form."""
        buttons = QHBoxLayout()
        self.run_button = QPushButton(run_text)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        outer.addLayout(buttons)
        add_progress_and_status(self, outer)

    def run(self):  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def begin_run(self, layer, stage: str, text: str) -> threading.Event:
        """Set the widget up for a run on ``layer``; returns the run's cancel event."""
        self._layer = layer
        self._succeeded = False
        self._embed_total = 0
        cancel = self.relay.new_run()
        self.destroyed.connect(lambda *_: cancel.set())  # the widget closed mid-run
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        show_progress(self.progress_bar, stage, 0, 0)
        self.status.setText(text)
        return cancel

    def cancel(self) -> None:
        """Stop the run (embedding before its next batch of windows); the layer is left as
        it was."""
        if self.worker is not None:
            self.relay.cancel.set()
            self.cancel_button.setEnabled(False)
            self.status.setText("cancelling…")

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        show_progress(self.progress_bar, stage, done, total)
        if total > 0:
            self._embed_total = total
            name = f" '{self._layer.name}'" if self._layer is not None else ""
            self.status.setText(f"{stage}{name}: {done}/{total} windows")
        else:
            self.status.setText(f"{stage}…")

    def _on_errored(self, exc: BaseException) -> None:
        if self.relay.cancel.is_set() and "cancelled" in str(exc):
            self.status.setText("cancelled; the layer is unchanged")
            show_info(f"{self.who}: cancelled")
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
