"""Qt-free pictures: the loss curve, the ethogram and the embedding map (matplotlib).

The same functions draw into the dock widgets' canvases and into PNG files (Agg), so what
people see in napari and in a report is one picture. Every function draws into a given
``Axes`` and returns its artists, so a live view can move the current-frame marker without
redrawing the rest.

Categorical colours come from one palette, :func:`category_colors`, which the points layers
use too: a cluster or behaviour has one colour in the viewer, in the plots and in files.
Nothing here imports matplotlib at module level (the palette is used without it).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import SkelmaeError

__all__ = [
    "UNLABELLED_COLOR",
    "EmbeddingMapArtists",
    "EthogramArtists",
    "category_colors",
    "codes_to_colors",
    "embedding_map_coordinates",
    "ethogram_bouts",
    "loss_series",
    "plot_embedding_map",
    "plot_ethogram",
    "plot_loss_curve",
    "umap_available",
]

#: colour of unlabelled rows (code -1, name None): light grey, kept out of the palette
UNLABELLED_COLOR = (0.78, 0.78, 0.78, 1.0)
#: matplotlib's tab10 without its grey (grey means "no label" here), then tab20's light
#: shades without theirs: 18 colours whose first 9 are the familiar tab10 ones
_PALETTE_HEX = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
    "#9edae5",
)
_GOLDEN = 0.618033988749895
#: points of the embedding map fitted at most (PCA / UMAP); the rest are projected
MAX_FIT_POINTS = 50_000


# ---------------------------------------------------------------------------- colours
def _hex_rgba(h: str) -> tuple[float, float, float, float]:
    return (int(h[1:3], 16) / 255, int(h[3:5], 16) / 255, int(h[5:7], 16) / 255, 1.0)


def _palette(i: int) -> tuple[float, float, float, float]:
    """The i-th category colour: tab10/tab20 first, then golden-ratio hues (never grey)."""
    if i < len(_PALETTE_HEX):
        return _hex_rgba(_PALETTE_HEX[i])
    k = i - len(_PALETTE_HEX)
    r, g, b = colorsys.hsv_to_rgb((0.05 + k * _GOLDEN) % 1.0, 0.75 if k % 2 else 0.55, 0.9)
    return (r, g, b, 1.0)


def is_unlabelled(name: Any) -> bool:
    """None, NaN, -1 and "-1" (a clusterer's noise) mean "no label"."""
    if name is None:
        return True
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        return int(name) == -1
    if isinstance(name, (float, np.floating)):
        return math.isnan(name) or name == -1
    return isinstance(name, str) and name.strip() == "-1"


def category_colors(names: Sequence[Any]) -> dict[Any, tuple[float, float, float, float]]:
    """``{name: RGBA}`` for categories in order; unlabelled names (None, -1) are grey.

    A category's colour depends only on its position among the labelled names, so adding a
    category later never recolours the earlier ones.
    """
    out: dict[Any, tuple[float, float, float, float]] = {}
    k = 0
    for name in names:
        if name in out:
            continue
        if is_unlabelled(name):
            out[name] = UNLABELLED_COLOR
        else:
            out[name] = _palette(k)
            k += 1
    return out


def codes_to_colors(codes: np.ndarray, names: Sequence[Any]) -> np.ndarray:
    """RGBA (…, 4) float32 of integer ``codes`` into ``names``; -1 (or out of range) is grey."""
    colors = category_colors(names)
    table = np.array([colors[n] for n in names] + [UNLABELLED_COLOR], dtype=np.float32)
    codes = np.asarray(codes)
    idx = np.where((codes >= 0) & (codes < len(names)), codes, len(names)).astype(np.int64)
    return table[idx]


def _legend_handles(names: Sequence[Any], marker: bool = False) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colors = category_colors(names)
    if marker:
        return [Line2D([], [], ls="", marker="o", markersize=6, color=colors[n], label=str(n))
                for n in colors]
    return [Patch(facecolor=colors[n], edgecolor="none", label=str(n)) for n in colors]


def _legend(ax, handles: list, title: str | None = None) -> Any:
    if not handles:
        return None
    ncol = 1 if len(handles) <= 12 else 2
    return ax.legend(handles=handles, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                     fontsize="small", ncol=ncol, frameon=False, borderaxespad=0.0)


# ------------------------------------------------------------------------ loss curve
def loss_series(history_or_points: Any) -> dict[str, Any]:
    """Train and validation (step, loss) arrays and the trivial baseline from a training
    history (``model.history``), a list of :class:`~napari_skelmae.training.Progress`, or a
    mapping ``{"train": [(step, loss), ...], "val": [...], "trivial": float}``.

    With Progress reports, a validation point is taken where the reported validation loss
    changes (every report repeats the latest one; the first is the loss before step 1), and
    a train point from each report at a new step (the end-of-epoch report repeats the step
    with the epoch's mean).
    """
    train: list[tuple[float, float]] = []
    val: list[tuple[float, float]] = []
    trivial = None
    source = history_or_points
    if isinstance(source, Mapping) and "epochs" in source:
        for row in source.get("epochs") or ():
            if row.get("train_loss") is not None and row.get("step", 0) > 0:
                train.append((row["step"], row["train_loss"]))
            if row.get("val_loss") is not None:
                val.append((row["step"], row["val_loss"]))
        trivial = source.get("trivial_val_loss")
    elif isinstance(source, Mapping):
        train = [tuple(p) for p in source.get("train", ())]
        val = [tuple(p) for p in source.get("val", ())]
        trivial = source.get("trivial")
    else:
        last_val = None
        for p in source or ():
            # a report at the step of the previous one is the end-of-epoch summary: its
            # train loss is the epoch's mean, not a new point of the curve
            if p.train_loss is not None and (not train or p.step > train[-1][0]):
                train.append((p.step, p.train_loss))
            if p.val_loss is not None and p.val_loss != last_val:
                val.append((0 if last_val is None and not val else p.step, p.val_loss))
                last_val = p.val_loss

    def arr(points):
        a = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return a[np.isfinite(a).all(axis=1)]

    return {"train": arr(train), "val": arr(val),
            "trivial": float(trivial) if trivial is not None else None}


def plot_loss_curve(ax, history_or_points: Any) -> dict[str, Any]:
    """Training and validation loss against the optimiser step (and the trivial baseline
    when the history has one: a model below it has learnt something). Returns the lines."""
    series = loss_series(history_or_points)
    lines: dict[str, Any] = {"train": None, "val": None, "trivial": None}
    train, val = series["train"], series["val"]
    if len(train):
        (lines["train"],) = ax.plot(train[:, 0], train[:, 1], color=_palette(0), lw=1.2,
                                    label="train")
    if len(val):
        (lines["val"],) = ax.plot(val[:, 0], val[:, 1], color=_palette(1), lw=1.2,
                                  marker="o", markersize=3, label="validation")
    if series["trivial"] is not None and math.isfinite(series["trivial"]):
        lines["trivial"] = ax.axhline(series["trivial"], color="0.5", ls="--", lw=1,
                                      label="trivial baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if any(v is not None for v in lines.values()):
        ax.legend(fontsize="small", frameon=False)
    else:
        ax.text(0.5, 0.5, "no loss yet", ha="center", va="center", transform=ax.transAxes,
                color="0.5")
    ax.grid(True, alpha=0.3)
    return lines


# -------------------------------------------------------------------------- ethogram
def ethogram_bouts(codes: np.ndarray, frame_index: np.ndarray) -> dict[str, np.ndarray]:
    """Labelled runs of ``codes`` (frames, individuals) as arrays ``individual`` (column),
    ``code``, ``start`` and ``stop`` (first and last video frame, inclusive). A run ends where
    the code changes or the tracked frames jump (the bouts of analysis/bouts.py)."""
    codes = np.asarray(codes)
    frame_index = np.asarray(frame_index, dtype=np.int64)
    if codes.ndim == 1:
        codes = codes[:, None]
    if codes.ndim != 2 or codes.shape[0] != len(frame_index):
        raise SkelmaeError(f"ethogram codes of shape {codes.shape} do not fit "
                           f"{len(frame_index)} frames")
    order = np.argsort(frame_index, kind="stable")
    frames = frame_index[order]
    cols: dict[str, list[np.ndarray]] = {"individual": [], "code": [], "start": [], "stop": []}
    gap = np.diff(frames) != 1
    for i in range(codes.shape[1]):
        column = codes[order, i].astype(np.int64)
        if not len(column):
            continue
        change = np.ones(len(column), bool)
        change[1:] = (column[1:] != column[:-1]) | gap
        starts = np.flatnonzero(change)
        stops = np.append(starts[1:], len(column)) - 1
        keep = column[starts] >= 0
        starts, stops = starts[keep], stops[keep]
        cols["individual"].append(np.full(len(starts), i, np.int64))
        cols["code"].append(column[starts])
        cols["start"].append(frames[starts])
        cols["stop"].append(frames[stops])
    return {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}


@dataclasses.dataclass
class EthogramArtists:
    """What :func:`plot_ethogram` drew: the bouts (for hit tests) and the frame marker."""

    ax: Any
    bouts: dict[str, np.ndarray]
    collection: Any
    current_line: Any
    legend: Any
    n_individuals: int

    def set_current_frame(self, frame: float | None) -> None:
        if frame is None:
            self.current_line.set_visible(False)
        else:
            self.current_line.set_xdata([frame, frame])
            self.current_line.set_visible(True)

    def bout_at(self, x: float, y: float) -> int | None:
        """Index of the bout under data coordinates (x = frame, y = individual row)."""
        row = int(round(y))
        if not 0 <= row < self.n_individuals or abs(y - row) > 0.4:
            return None
        b = self.bouts
        hit = np.flatnonzero((b["individual"] == row) & (b["start"] - 0.5 <= x)
                             & (x <= b["stop"] + 0.5))
        return int(hit[0]) if len(hit) else None


def plot_ethogram(
    ax,
    codes: np.ndarray,
    names: Sequence[Any],
    frame_index: np.ndarray,
    individual_names: Sequence[Any],
    current_frame: float | None = None,
    title: str | None = None,
) -> EthogramArtists:
    """Cluster or behaviour of each individual over time: one row per individual, one
    coloured bar per bout (video frame ``f`` covers ``[f - 0.5, f + 0.5]``), unlabelled
    stretches left blank, a black line at ``current_frame``."""
    from matplotlib.collections import PolyCollection

    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    n_ind = len(individual_names)
    if codes.shape[1:] != (n_ind,):
        raise SkelmaeError(f"ethogram codes of shape {codes.shape} do not fit "
                           f"{n_ind} individuals")
    if codes.size and codes.max(initial=-1) >= len(names):
        raise SkelmaeError(f"ethogram codes reach {int(codes.max())} but there are only "
                           f"{len(names)} names")
    bouts = ethogram_bouts(codes, frame_index)
    x0, x1 = bouts["start"] - 0.5, bouts["stop"] + 0.5
    y = bouts["individual"].astype(np.float64)
    verts = np.stack([np.stack([x0, y - 0.4], 1), np.stack([x1, y - 0.4], 1),
                      np.stack([x1, y + 0.4], 1), np.stack([x0, y + 0.4], 1)], axis=1)
    collection = PolyCollection(verts, facecolors=codes_to_colors(bouts["code"], names),
                                edgecolors="none", linewidths=0, antialiaseds=False)
    ax.add_collection(collection)
    frames = np.asarray(frame_index)
    if len(frames):
        ax.set_xlim(float(frames.min()) - 0.5, float(frames.max()) + 0.5)
    ax.set_ylim(max(n_ind, 1) - 0.5, -0.5)  # first individual on top
    ax.set_yticks(range(n_ind), [str(n) for n in individual_names])
    ax.set_xlabel("frame")
    if title:
        ax.set_title(title)
    line = ax.axvline(0 if current_frame is None else current_frame, color="black", lw=1.5,
                      zorder=5)
    legend = _legend(ax, _legend_handles([n for n in names if not is_unlabelled(n)]))
    artists = EthogramArtists(ax, bouts, collection, line, legend, n_ind)
    artists.set_current_frame(current_frame)
    return artists


# ----------------------------------------------------------------------- embedding map
def umap_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def embedding_map_coordinates(
    embeddings: np.ndarray, method: str = "pca", seed: int = 0,
    max_fit: int = MAX_FIT_POINTS,
) -> np.ndarray:
    """2D coordinates of embeddings (…, D): PCA, or UMAP when umap-learn is installed
    (``method="auto"`` takes UMAP when it can). Shape ``embeddings.shape[:-1] + (2,)``,
    NaN where an embedding has NaN (an absent animal). At most ``max_fit`` rows (evenly
    spaced) fit the projection; every row is then projected, so long recordings stay fast."""
    if method not in ("pca", "umap", "auto"):
        raise SkelmaeError(f"embedding map method must be 'pca', 'umap' or 'auto', got "
                           f"{method!r}")
    if method == "auto":
        method = "umap" if umap_available() else "pca"
    arr = np.asarray(embeddings, dtype=np.float32)
    if arr.ndim < 2 or arr.shape[-1] < 1:
        raise SkelmaeError(f"embeddings must be (..., D) with D >= 1, got shape {arr.shape}")
    flat = arr.reshape(-1, arr.shape[-1])
    ok = np.isfinite(flat).all(axis=1)
    rows = np.flatnonzero(ok)
    if len(rows) < 3:
        raise SkelmaeError(f"an embedding map needs at least 3 embedded frames, got {len(rows)}")
    fit = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), max_fit)).astype(int))]
    out = np.full((len(flat), 2), np.nan, dtype=np.float32)
    if method == "pca":
        x = flat[fit].astype(np.float64)
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        comps = np.zeros((2, flat.shape[1]))
        comps[: min(2, len(vt))] = vt[:2]
        # a deterministic sign: each component's largest loading is positive
        big = np.abs(comps).argmax(axis=1)
        comps *= np.where(comps[np.arange(2), big] < 0, -1.0, 1.0)[:, None]
        out[rows] = (flat[rows].astype(np.float64) - mean) @ comps.T
    else:
        if not umap_available():
            raise SkelmaeError("a UMAP map needs umap-learn: pip install umap-learn "
                               "(or use method='pca')")
        import umap

        reducer = umap.UMAP(n_components=2, random_state=seed)
        reducer.fit(flat[fit])
        out[fit] = reducer.embedding_
        rest = np.setdiff1d(rows, fit)
        if len(rest):
            out[rest] = reducer.transform(flat[rest])
    return out.reshape(arr.shape[:-1] + (2,))


@dataclasses.dataclass
class EmbeddingMapArtists:
    """What :func:`plot_embedding_map` drew: the points and the current-point marker."""

    ax: Any
    xy: np.ndarray
    scatter: Any
    current_marker: Any
    legend: Any

    def set_current(self, current: Any) -> None:
        idx = _indices(current, len(self.xy))
        pts = self.xy[idx] if len(idx) else np.zeros((0, 2))
        self.current_marker.set_data(pts[:, 0], pts[:, 1])
        self.current_marker.set_visible(len(pts) > 0)

    def point_at(self, x_px: float, y_px: float, tolerance_px: float = 8.0) -> int | None:
        """Index of the point nearest to display coordinates (pixels), if within tolerance."""
        ok = np.flatnonzero(np.isfinite(self.xy).all(axis=1))
        if not len(ok):
            return None
        disp = self.ax.transData.transform(self.xy[ok])
        d2 = ((disp - (x_px, y_px)) ** 2).sum(axis=1)
        k = int(d2.argmin())
        return int(ok[k]) if d2[k] <= tolerance_px**2 else None


def _indices(current: Any, n: int) -> np.ndarray:
    if current is None:
        return np.zeros(0, np.int64)
    arr = np.asarray(current)
    if arr.dtype == bool:
        return np.flatnonzero(arr)
    return np.atleast_1d(arr).astype(np.int64)


def plot_embedding_map(
    ax,
    xy: np.ndarray,
    labels: np.ndarray | None,
    names: Sequence[Any] | None,
    current: Any = None,
    axis_names: tuple[str, str] = ("dimension 1", "dimension 2"),
    title: str | None = None,
) -> EmbeddingMapArtists:
    """Scatter of 2D embedding coordinates coloured by ``labels`` (codes into ``names``,
    -1 grey; None: one colour), with rings on the ``current`` points (an index, indices or
    a boolean mask: e.g. the individuals of the viewer's frame)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = len(xy)
    if labels is None:
        colors = np.tile(np.array(_palette(0), np.float32), (n, 1))
        names = []
    else:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != n:
            raise SkelmaeError(f"{len(labels)} labels for {n} map points")
        names = list(names or [])
        if labels.size and labels.max(initial=-1) >= len(names):
            raise SkelmaeError(f"map labels reach {int(labels.max())} but there are only "
                               f"{len(names)} names")
        colors = codes_to_colors(labels, names)
    ok = np.isfinite(xy).all(axis=1)
    size = float(np.clip(4000.0 / max(ok.sum(), 1), 1.0, 16.0))
    scatter = ax.scatter(xy[ok, 0], xy[ok, 1], c=colors[ok], s=size, linewidths=0,
                         rasterized=bool(ok.sum() > 5000))
    (marker,) = ax.plot([], [], ls="", marker="o", markersize=11, markerfacecolor="none",
                        markeredgecolor="black", markeredgewidth=1.8, zorder=5)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    if title:
        ax.set_title(title)
    legend = _legend(ax, _legend_handles([n for n in names if not is_unlabelled(n)],
                                         marker=True))
    artists = EmbeddingMapArtists(ax, xy, scatter, marker, legend)
    artists.set_current(current)
    return artists
