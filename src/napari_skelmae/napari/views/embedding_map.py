"""Embedding map dock widget: every (frame, individual) as a point in 2D, by cluster.

Drawn by :func:`napari_skelmae.plots.plot_embedding_map`; coordinates from
:func:`napari_skelmae.plots.embedding_map_coordinates` (PCA, or UMAP when umap-learn is
installed). Linked to the viewer: the points of the current frame are ringed, and clicking a
point moves the viewer to its frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qtpy.QtWidgets import QWidget

from ...errors import SkelmaeError
from ...plots import EmbeddingMapArtists, embedding_map_coordinates, plot_embedding_map
from ._linked import LinkedView

AXIS_NAMES = {"pca": ("PC 1", "PC 2"), "umap": ("UMAP 1", "UMAP 2")}


class EmbeddingMapView(LinkedView):
    """Dock widget: 2D map of the embeddings linked to the frame slider."""

    def __init__(self, napari_viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.artists: EmbeddingMapArtists | None = None
        self.frames = np.zeros(0)
        self.individuals = np.zeros(0, np.int64)
        self.individual_names: list[Any] = []
        self.set_data(np.zeros((0, 2)), None, None, np.zeros(0))

    def set_data(
        self,
        xy: np.ndarray,
        labels: np.ndarray | None,
        names: Sequence[Any] | None,
        frames: np.ndarray,
        individuals: np.ndarray | None = None,
        individual_names: Sequence[Any] | None = None,
        axis_names: tuple[str, str] = ("dimension 1", "dimension 2"),
        title: str | None = None,
    ) -> None:
        """Show points ``xy`` (n, 2) with their video ``frames`` (n,), optional ``labels``
        (codes into ``names``, -1 grey) and ``individuals`` (indices into
        ``individual_names``, shown when a point is clicked)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        frames = np.asarray(frames, dtype=np.float64).reshape(-1)
        if len(frames) != len(xy):
            raise SkelmaeError(f"{len(frames)} frames for {len(xy)} map points")
        self.frames = frames
        self.individuals = (np.zeros(len(xy), np.int64) if individuals is None
                            else np.asarray(individuals, np.int64).reshape(-1))
        self.individual_names = list(individual_names or [])
        ax = self.plot.new_axes()
        self.artists = plot_embedding_map(ax, xy, labels, names,
                                          current=self._current_mask(self.current_frame()),
                                          axis_names=axis_names, title=title)
        self.plot.set_animated([self.artists.current_marker])
        if not len(xy):
            ax.text(0.5, 0.5, "no embeddings yet: run Embed & cluster", ha="center",
                    va="center", transform=ax.transAxes, color="0.5")
        self.message.setText(f"{int(np.isfinite(xy).all(axis=1).sum())} points" if len(xy)
                             else "")
        self.plot.canvas.draw_idle()

    def set_embeddings(
        self,
        embeddings: np.ndarray,
        frame_index: np.ndarray,
        labels: np.ndarray | None = None,
        names: Sequence[Any] | None = None,
        individual_names: Sequence[Any] | None = None,
        method: str = "pca",
        title: str | None = None,
    ) -> None:
        """Project per-frame ``embeddings`` (frames, individuals, D) and show them, with
        per-frame ``labels`` (frames, individuals). Runs on the calling thread: for UMAP on
        long recordings compute :func:`embedding_map_coordinates` in a worker instead."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 3 or embeddings.shape[0] != len(frame_index):
            raise SkelmaeError(f"embeddings of shape {embeddings.shape} do not fit "
                               f"{len(frame_index)} frames (expected frames x individuals x D)")
        if method == "auto":
            from ...plots import umap_available

            method = "umap" if umap_available() else "pca"
        xy = embedding_map_coordinates(embeddings, method=method)
        n_frames, n_ind = embeddings.shape[:2]
        self.set_data(
            xy.reshape(-1, 2),
            None if labels is None else np.asarray(labels).reshape(-1),
            names,
            np.repeat(np.asarray(frame_index), n_ind),
            individuals=np.tile(np.arange(n_ind), n_frames),
            individual_names=individual_names,
            axis_names=AXIS_NAMES[method],
            title=title,
        )

    def _current_mask(self, frame: float | None) -> np.ndarray | None:
        if frame is None or not len(self.frames):
            return None
        return np.abs(self.frames - frame) < 0.5

    # ---- the link to the viewer --------------------------------------------------------
    def show_current(self, frame: float | None) -> None:
        if self.artists is None:
            return
        self.artists.set_current(self._current_mask(frame))
        self.plot.update_animated()

    def frame_at(self, event) -> float | None:
        if self.artists is None or event.inaxes is not self.artists.ax:
            return None
        i = self.artists.point_at(event.x, event.y)
        if i is None:
            return None
        if self.individual_names:
            self.message.setText(f"frame {self.frames[i]:g}, "
                                 f"{self.individual_names[self.individuals[i]]}")
        return float(self.frames[i])
