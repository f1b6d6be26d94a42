"""A matplotlib canvas for dock widgets, with a cheap way to move one marker.

Moving the current-frame marker must not redraw a 200 000-point scatter on every frame of
playback, so the marker artists are ``animated``: the full figure is drawn once (and again
after a resize or zoom), its pixels are kept, and a frame change only pastes them back and
draws the markers on top (matplotlib blitting).
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget


class MplCanvas(QWidget):
    """Figure + Qt canvas (+ navigation toolbar) in one widget."""

    def __init__(self, parent: QWidget | None = None, toolbar: bool = True,
                 figsize: tuple[float, float] = (5.0, 3.0)):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(160)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toolbar = NavigationToolbar2QT(self.canvas, self) if toolbar else None
        if self.toolbar is not None:
            layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        self._animated: list[Any] = []
        self._background = None
        self.canvas.mpl_connect("draw_event", self._on_draw)

    @property
    def navigating(self) -> bool:
        """True while the toolbar's zoom or pan tool is on (clicks then belong to it)."""
        return self.toolbar is not None and bool(str(self.toolbar.mode))

    def new_axes(self):
        """Clear the figure and return one fresh Axes."""
        self.figure.clear()
        self._animated = []
        self._background = None
        return self.figure.add_subplot(1, 1, 1)

    def set_animated(self, artists: list[Any]) -> None:
        """Artists redrawn on their own by :meth:`update_animated`."""
        self._animated = [a for a in artists if a is not None]
        for a in self._animated:
            a.set_animated(True)

    def _on_draw(self, event=None) -> None:
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    def _draw_animated(self) -> None:
        for a in self._animated:
            self.figure.draw_artist(a)

    def update_animated(self) -> None:
        """Redraw only the animated artists over the kept background."""
        if self._background is None:
            self.canvas.draw_idle()
            return
        self.canvas.restore_region(self._background)
        self._draw_animated()
        self.canvas.blit(self.figure.bbox)
