"""What both views share: a canvas, the link to the viewer's frame slider, clicks."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ._canvas import MplCanvas

#: the viewer's world axis that holds the video frame (layers.py puts it first)
FRAME_AXIS = 0


class LinkedView(QWidget):
    """A matplotlib view whose marker follows ``viewer.dims`` and whose clicks move it."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.plot = MplCanvas(self)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.controls = QVBoxLayout()
        layout.addLayout(self.controls)
        layout.addWidget(self.plot, stretch=1)
        layout.addWidget(self.message)
        self.plot.canvas.mpl_connect("button_press_event", self._on_press)
        self.viewer.dims.events.point.connect(self._on_dims)

    # ---- the viewer's frame ----------------------------------------------------------
    def current_frame(self) -> float | None:
        point = self.viewer.dims.point
        return float(point[FRAME_AXIS]) if len(point) > FRAME_AXIS else None

    def jump_to(self, frame: float) -> None:
        """Move the viewer to video frame ``frame`` (its world coordinate on axis 0)."""
        self.viewer.dims.set_point(FRAME_AXIS, float(frame))

    def _on_dims(self, event: Any = None) -> None:
        try:
            self.show_current(self.current_frame())
        except RuntimeError:  # the Qt side of this widget is gone: stop listening
            self.viewer.dims.events.point.disconnect(self._on_dims)

    def show_current(self, frame: float | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- clicks ------------------------------------------------------------------------
    def _on_press(self, event) -> None:
        if event.button != 1 or event.inaxes is None or self.plot.navigating:
            return
        frame = self.frame_at(event)
        if frame is not None:
            self.jump_to(frame)

    def frame_at(self, event) -> float | None:  # pragma: no cover - abstract
        raise NotImplementedError


def nearest_frame(frames: np.ndarray, x: float) -> float | None:
    """The tracked video frame nearest to ``x``."""
    frames = np.asarray(frames)
    if not len(frames):
        return None
    return float(frames[int(np.abs(frames - x).argmin())])
