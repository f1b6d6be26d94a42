"""Ethogram dock widget: the cluster or behaviour of every individual over time.

Drawn by :func:`napari_skelmae.plots.plot_ethogram` (the same picture as the PNG files),
linked to the viewer: a black line marks the current frame, clicking a bout moves the viewer
to the bout's first frame (clicking between bouts, to the frame under the cursor).

Data come either from :meth:`EthogramView.set_data` (plain arrays: what the Embed & cluster
and Classify widgets produce) or from a categorical feature of a points layer made by this
plugin (e.g. a ``cluster`` or ``behaviour`` column), chosen in the widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from ...errors import SkelmaeError
from ...plots import EthogramArtists, plot_ethogram
from ._linked import LinkedView, nearest_frame

#: feature columns that are not a per-(frame, individual) category
NOT_CATEGORIES = ("keypoint", "confidence")


def plugin_points_layers(viewer) -> list:
    """The points layers of ``viewer`` made by this plugin (they can be rebuilt into tracks).
    (isinstance, not type(): a plugin widget sees layers through napari's proxies.)"""
    from napari.layers import Points

    return [layer for layer in viewer.layers
            if isinstance(layer, Points)
            and (layer.metadata.get("skelmae") or {}).get("role") == "points"]


def category_columns(layer) -> list[str]:
    """Feature columns of a points layer that can colour an ethogram (not floats)."""
    out = []
    for name in layer.features.columns:
        column = layer.features[name]
        if name in NOT_CATEGORIES or pd.api.types.is_float_dtype(column):
            continue
        out.append(str(name))
    return out


def codes_from_points_layer(layer, column: str) -> dict[str, Any]:
    """Per-(frame, individual) codes of a categorical feature of a plugin points layer:
    ``{codes, names, frame_index, individual_names}`` for :meth:`EthogramView.set_data`.
    All keypoints of an animal in a frame share the value; rows without points are -1, and
    so are the rows :func:`~napari_skelmae.napari.layers.label_layers` marked unlabelled (it
    records the names of a column in the layer's metadata)."""
    facts = layer.metadata.get("skelmae") or {}
    if facts.get("role") != "points":
        raise SkelmaeError(f"layer '{layer.name}' was not made by napari-skelmae")
    features = layer.features
    if column not in features:
        raise SkelmaeError(f"layer '{layer.name}' has no feature '{column}'")
    frame_index = np.asarray(facts["frame_index"], dtype=np.int64)
    individual_names = list(facts["individual_names"])
    values = features[column]
    recorded = (facts.get("labels") or {}).get(column)  # written by layers.label_layers
    if recorded is not None:  # its "no label" category is not a name
        names = list(recorded)
        value_codes = pd.Categorical(values.astype(str), categories=names).codes
    elif isinstance(values.dtype, pd.CategoricalDtype):
        names = list(values.cat.categories)
        value_codes = values.cat.codes.to_numpy()
    else:
        names = sorted(pd.unique(values.dropna()).tolist(), key=lambda v: (str(type(v)), v))
        value_codes = pd.Categorical(values, categories=names).codes
    codes = np.full((len(frame_index), len(individual_names)), -1, np.int64)
    if len(layer.data):
        order = np.argsort(frame_index, kind="stable")
        frames = np.rint(np.asarray(layer.data)[:, 0]).astype(np.int64)
        at = np.minimum(np.searchsorted(frame_index[order], frames), len(order) - 1)
        found = frame_index[order][at] == frames
        rows = order[at]
        ind = pd.Categorical(features["individual"].astype(str),
                             categories=[str(n) for n in individual_names]).codes
        keep = found & (ind >= 0)
        codes[rows[keep], ind[keep]] = value_codes[keep]
    return {"codes": codes, "names": names, "frame_index": frame_index,
            "individual_names": individual_names}


class RefreshingComboBox(QComboBox):
    """A combo box that refreshes its items just before it opens (a layer's feature columns
    change without an event the widget could follow cheaply)."""

    def __init__(self, refresh, parent: QWidget | None = None):
        super().__init__(parent)
        self._refresh = refresh

    def showPopup(self) -> None:  # noqa: N802 - Qt's name
        self._refresh()
        super().showPopup()


class EthogramView(LinkedView):
    """Dock widget: ethogram linked to the frame slider."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.artists: EthogramArtists | None = None
        row = QHBoxLayout()
        self.layer_box = QComboBox()
        self.column_box = RefreshingComboBox(self._refresh_columns)
        self.show_button = QPushButton("Show")
        row.addWidget(QLabel("layer"))
        row.addWidget(self.layer_box, stretch=1)
        row.addWidget(QLabel("colour by"))
        row.addWidget(self.column_box, stretch=1)
        row.addWidget(self.show_button)
        self.controls.addLayout(row)
        self.layer_box.currentIndexChanged.connect(self._refresh_columns)
        self.show_button.clicked.connect(self.show_layer_feature)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._refresh_layers()
        self.set_data(np.zeros((0, 0), np.int64), [], np.zeros(0, np.int64), [])

    # ---- data ------------------------------------------------------------------------
    def set_data(
        self,
        codes: np.ndarray,
        names: Sequence[Any],
        frame_index: np.ndarray,
        individual_names: Sequence[Any],
        title: str | None = None,
        source: tuple[str, str] | None = None,
    ) -> None:
        """Show per-frame ``codes`` (frames, individuals) into ``names``; -1 = unlabelled.
        ``source``: the (points layer, feature column) these codes are, so the "layer" and
        "colour by" boxes say what is shown (e.g. ``behaviour`` after Classify)."""
        if source is not None:
            self.select_source(*source)
        ax = self.plot.new_axes()
        frame_index = np.asarray(frame_index)
        self.frame_index = frame_index
        self.artists = plot_ethogram(ax, codes, names, frame_index, individual_names,
                                     current_frame=self.current_frame(), title=title)
        self.plot.set_animated([self.artists.current_line])
        if not len(frame_index):
            ax.text(0.5, 0.5, "no data yet: choose a layer and a feature, or run\n"
                    "Embed & cluster / Classify", ha="center", va="center",
                    transform=ax.transAxes, color="0.5")
        self.message.setText(f"{len(self.artists.bouts['start'])} bouts" if len(frame_index)
                             else "")
        self.plot.canvas.draw_idle()

    def select_source(self, layer_name: str, column: str) -> None:
        """Point the boxes at ``layer_name`` / ``column`` (when they are there)."""
        self._refresh_layers()
        at = self.layer_box.findText(layer_name)
        if at >= 0:
            self.layer_box.setCurrentIndex(at)
            self._refresh_columns()
        if self.column_box.findText(column) >= 0:
            self.column_box.setCurrentText(column)

    def show_layer_feature(self) -> None:
        """Show the chosen feature of the chosen points layer."""
        from napari.utils.notifications import show_error

        layer = self._selected_layer()
        column = self.column_box.currentText()
        if layer is None or not column:
            show_error("Ethogram: choose a napari-skelmae points layer and a feature first.")
            return
        try:
            data = codes_from_points_layer(layer, column)
        except SkelmaeError as e:
            show_error(str(e))
            return
        self.set_data(**data, title=f"{layer.name}: {column}", source=(layer.name, column))

    def _refresh_layers(self, event: Any = None) -> None:
        try:
            current = self.layer_box.currentText()
            self.layer_box.blockSignals(True)
            self.layer_box.clear()
            self.layer_box.addItems([layer.name for layer in plugin_points_layers(self.viewer)])
            self.layer_box.setCurrentIndex(max(self.layer_box.findText(current), 0))
            self.layer_box.blockSignals(False)
            self._refresh_columns()
        except RuntimeError:  # the widget is gone
            for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
                ev.disconnect(self._refresh_layers)

    def _selected_layer(self):
        name = self.layer_box.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _refresh_columns(self, index: int = 0) -> None:
        layer = self._selected_layer()
        current = self.column_box.currentText()
        self.column_box.clear()
        if layer is not None:
            columns = category_columns(layer)
            self.column_box.addItems(columns)
            preferred = [c for c in (current, "behaviour", "cluster", "labels") if c in columns]
            if preferred:
                self.column_box.setCurrentText(preferred[0])

    # ---- the link to the viewer --------------------------------------------------------
    def show_current(self, frame: float | None) -> None:
        if self.artists is None:
            return
        self.artists.set_current_frame(frame)
        self.plot.update_animated()

    def frame_at(self, event) -> float | None:
        if self.artists is None or event.inaxes is not self.artists.ax or event.xdata is None:
            return None
        bout = self.artists.bout_at(event.xdata, event.ydata)
        if bout is not None:
            return float(self.artists.bouts["start"][bout])
        return nearest_frame(self.frame_index, event.xdata)
