"""The per-frame results table: one row per tracked animal per video frame.

:func:`results_table` puts everything the analysis found about a recording into one
:class:`pandas.DataFrame` keyed by (``frame``, ``individual``), the shape that is written to
``<stem>.skelmae.parquet`` / ``.csv`` and held beside the napari layers. Columns, in order:

``frame``        int64, the VIDEO frame (``PoseTracks.frame_index``)
``time``         float64 seconds, ``frame / fps``; NaN when the frame rate is unknown
``individual``   categorical of the track names (categories in track order)
``cluster``      int64 cluster id, -1 where there is none
``cluster_name`` categorical, only when cluster names are given
``behaviour``    categorical behaviour name, missing (NaN) where unlabelled
``probability``  float32 probability of the row's behaviour; NaN where unlabelled or unknown
``p_<name>``     float32 probability of each behaviour class, only when probabilities are given
``emb_000``...   float32 embedding dimensions, only when embeddings are given

Rows are sorted by frame, then individual (track order). A row exists where the animal is
tracked (at least one keypoint) or carries a result (a cluster, a behaviour, a probability or
an embedding); other rows are dropped (``keep_absent=True`` keeps every row), so a file whose
fragmented track ids mostly sit empty does not get a row per id per frame, and no result is
ever lost. ``table.attrs["skelmae"]`` says what made the table (model id, method, package
version, fps, names); it travels into the parquet file's schema metadata.

Embeddings live once per (frame, individual) here; only scalar labels belong on point
features. :func:`results_from_table` and :func:`column_array` turn a table (also one read back
from a file) into arrays aligned with the rows and individuals of a ``PoseTracks``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import SkelmaeError
from .tracks import PoseTracks

if TYPE_CHECKING:
    from .embeddings import Embeddings
    from .model import SkeletonModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "Results",
    "column_array",
    "embedding_columns",
    "results_from_table",
    "results_table",
]

#: what ``table.attrs["skelmae"]["format"]`` says, and the version of the table's layout
FORMAT = "napari-skelmae results"
FORMAT_VERSION = 1
METADATA_KEY = "skelmae"
PROBABILITY_PREFIX = "p_"
EMBEDDING_PREFIX = "emb_"
_EMBEDDING_COLUMN = re.compile(r"^emb_(\d+)$")


@dataclasses.dataclass(frozen=True, eq=False)
class Results:
    """The arrays of a results table, aligned with the rows and individuals of a PoseTracks.

    Every array is (frames, individuals[, ...]) in the row order of the tracks it was built
    for. ``clusters`` and ``behaviours`` hold -1 where there is no label; ``probability``,
    ``probabilities`` and ``embedding_values`` hold NaN where there is no value.

    ``embedding_values`` is a plain float32 array; :attr:`embeddings` is the same values as an
    :class:`~napari_skelmae.embeddings.Embeddings` tagged with ``model_id``."""

    frame_index: np.ndarray
    individual_names: list[str]
    clusters: np.ndarray
    behaviours: np.ndarray
    behaviour_names: list[str]
    probability: np.ndarray
    probabilities: np.ndarray | None = None
    embedding_values: np.ndarray | None = None
    model_id: str | None = None
    cluster_names: list[str] | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def embeddings(self) -> Embeddings | None:
        """The embeddings tagged with the id of the model that made them (or None)."""
        if self.embedding_values is None:
            return None
        from .embeddings import Embeddings

        return Embeddings(self.embedding_values, model_id=self.model_id)

    def bouts(self) -> pd.DataFrame:
        """The behaviour bouts (see :mod:`napari_skelmae.analysis.bouts`), with the mean
        probability of each bout when the table has probabilities."""
        from .analysis.bouts import frames_to_bouts

        has_probability = bool(np.isfinite(self.probability).any())
        return frames_to_bouts(self.behaviours, self.behaviour_names, self.frame_index,
                               self.individual_names,
                               self.probability if has_probability else None)


# ----------------------------------------------------------------------------- building
def results_table(
    tracks: PoseTracks,
    *,
    embeddings: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    behaviours: np.ndarray | None = None,
    behaviour_names: Sequence[str] | None = None,
    probabilities: np.ndarray | None = None,
    cluster_names: Sequence[str] | None = None,
    model: SkeletonModel | None = None,
    method: str | None = None,
    keep_absent: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The per-frame results table of ``tracks`` (see the module docstring for the columns).

    Parameters
    ----------
    embeddings
        (frames, individuals, D), NaN where absent (an :class:`Embeddings` also gives the
        model id).
    clusters
        int (frames, individuals), -1 where there is no cluster.
    behaviours
        int codes (frames, individuals) into ``behaviour_names``, -1 where unlabelled. When
        omitted but ``probabilities`` are given, each row's most probable class.
    probabilities
        (frames, individuals, classes) per-class probabilities, classes in the order of
        ``behaviour_names``; NaN where there is none.
    cluster_names
        Names of the cluster ids (adds a ``cluster_name`` column).
    model, method
        What made the embeddings: a :class:`SkeletonModel` gives its method and id.
    keep_absent
        Keep rows of animals that are neither tracked nor labelled in a frame.
    metadata
        Extra JSON-serialisable facts for ``table.attrs["skelmae"]``.
    """
    shape = (tracks.n_frames, tracks.n_individuals)
    clusters_ = _codes(clusters, shape, "clusters", cluster_names)
    names = _names(behaviour_names, "behaviour_names")
    cluster_names_ = _names(cluster_names, "cluster_names")
    probs = _probabilities(probabilities, shape, names)
    if behaviours is None and probs is not None:
        behaviours_ = _most_probable(probs)
    else:
        if behaviours is not None and names is None:
            raise SkelmaeError("behaviour codes need behaviour_names to say what they mean")
        behaviours_ = _codes(behaviours, shape, "behaviours", names)
    emb = _embeddings(embeddings, shape)
    names = names or []

    probability = np.full(shape, np.nan, np.float32)
    if probs is not None:
        labelled = behaviours_ >= 0
        rows, cols = np.nonzero(labelled)
        probability[rows, cols] = probs[rows, cols, behaviours_[rows, cols]]

    keep = np.ones(shape, bool)
    if not keep_absent:
        keep = ~tracks.missing.all(axis=2) | (clusters_ >= 0) | (behaviours_ >= 0)
        if probs is not None:
            keep |= np.isfinite(probs).any(axis=2)
        if emb is not None:
            keep |= np.isfinite(emb).any(axis=2)
    order = np.argsort(tracks.frame_index, kind="stable")
    rows, cols = np.nonzero(keep[order])  # frame-major, then individual in track order
    rows = order[rows]

    frames = tracks.frame_index[rows]
    individual_names = [str(n) for n in tracks.individual_names]
    columns: dict[str, Any] = {
        "frame": frames.astype(np.int64),
        "time": frames / tracks.fps if tracks.fps else np.full(len(frames), np.nan),
        "individual": pd.Categorical.from_codes(cols, categories=individual_names),
        "cluster": clusters_[rows, cols].astype(np.int64),
    }
    if cluster_names_ is not None:
        columns["cluster_name"] = pd.Categorical.from_codes(clusters_[rows, cols],
                                                            categories=cluster_names_)
    columns["behaviour"] = pd.Categorical.from_codes(behaviours_[rows, cols], categories=names)
    columns["probability"] = probability[rows, cols]
    if probs is not None:
        for k, name in enumerate(names):
            columns[PROBABILITY_PREFIX + name] = probs[rows, cols, k]
    if emb is not None:
        for d, name in enumerate(embedding_columns(emb.shape[2])):
            columns[name] = emb[rows, cols, d]
    table = pd.DataFrame(columns)

    model_id = getattr(embeddings, "model_id", None)
    if model is not None:
        model_id = model_id or model.model_id
        method = method or model.method
    from . import __version__

    table.attrs[METADATA_KEY] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "model_id": model_id,
        "method": method,
        "fps": tracks.fps,
        "individual_names": individual_names,
        "behaviour_names": list(names),
        "cluster_names": cluster_names_,
        "embedding_dim": None if emb is None else int(emb.shape[2]),
        "has": {"clusters": clusters is not None, "behaviours": bool(names),
                "probabilities": probs is not None, "embeddings": emb is not None},
        "source_path": None if tracks.source_path is None else str(tracks.source_path),
        "video_path": None if tracks.video_path is None else str(tracks.video_path),
        **dict(metadata or {}),
    }
    return table


def embedding_columns(dim: int) -> list[str]:
    """``emb_000``.. (wider when there are 1000 dimensions or more), so names sort in order."""
    width = max(3, len(str(max(dim - 1, 0))))
    return [f"{EMBEDDING_PREFIX}{d:0{width}d}" for d in range(dim)]


def _names(names: Sequence[str] | None, what: str) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise SkelmaeError(f"{what} must be a list of names, not the string {names!r}")
    out = [str(n) for n in names]
    if any(not n for n in out):
        raise SkelmaeError(f"{what} must not contain empty names: {out}")
    if len(set(out)) != len(out):
        duplicated = sorted({n for n in out if out.count(n) > 1})
        raise SkelmaeError(f"{what} repeat the name(s) {duplicated}")
    return out


def _codes(codes, shape, what: str, names: Sequence[str] | None) -> np.ndarray:
    if codes is None:
        return np.full(shape, -1, np.int64)
    arr = np.asarray(codes)
    if arr.shape != shape:
        raise SkelmaeError(f"{what} have shape {arr.shape}; the tracks need (frames, "
                           f"individuals) = {shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or np.any(
                np.isfinite(arr) & (arr != np.round(arr))):
            raise SkelmaeError(f"{what} must be whole numbers (-1 for none), got {arr.dtype}")
        arr = np.where(np.isfinite(arr), arr, -1)
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < -1:
        raise SkelmaeError(f"{what} must be -1 (none) or >= 0, found {int(arr.min())}")
    if names is not None and arr.size and arr.max() >= len(names):
        raise SkelmaeError(f"{what} hold code {int(arr.max())}, but only {len(names)} names "
                           f"are given: {list(names)}")
    return arr


def _probabilities(probabilities, shape, names) -> np.ndarray | None:
    if probabilities is None:
        return None
    if names is None:
        raise SkelmaeError("probabilities need behaviour_names to name their classes")
    arr = np.asarray(probabilities, dtype=np.float32)
    if arr.shape != (*shape, len(names)):
        raise SkelmaeError(f"probabilities have shape {arr.shape}; expected (frames, "
                           f"individuals, classes) = {(*shape, len(names))}")
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < -1e-6 or finite.max() > 1 + 1e-6):
        raise SkelmaeError(f"probabilities must lie in [0, 1], found {float(finite.min()):g}.."
                           f"{float(finite.max()):g}")
    return arr


def _most_probable(probs: np.ndarray) -> np.ndarray:
    have = np.isfinite(probs).any(axis=2)
    filled = np.where(np.isfinite(probs), probs, -np.inf)
    return np.where(have, filled.argmax(axis=2), -1).astype(np.int64)


def _embeddings(embeddings, shape) -> np.ndarray | None:
    if embeddings is None:
        return None
    arr = np.asarray(embeddings, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[:2] != shape:
        raise SkelmaeError(f"embeddings have shape {arr.shape}; the tracks need (frames, "
                           f"individuals, D) with (frames, individuals) = {shape}")
    return arr


# ---------------------------------------------------------------------- reading it back
def _row_positions(table: pd.DataFrame, tracks: PoseTracks) -> tuple[np.ndarray, np.ndarray]:
    """Row and individual index in ``tracks`` of every table row (errors name the misfits)."""
    missing = [c for c in ("frame", "individual") if c not in table.columns]
    if missing:
        raise SkelmaeError(f"the results table has no column(s) {missing}")
    frames = pd.to_numeric(table["frame"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(frames).any() or np.any(frames != np.round(frames)):
        raise SkelmaeError("the results table's 'frame' column must hold whole frame numbers")
    lookup = pd.Index(tracks.frame_index)
    rows = lookup.get_indexer(frames.astype(np.int64))
    if (rows < 0).any():
        unknown = sorted(set(frames[rows < 0].astype(np.int64).tolist()))
        raise SkelmaeError(f"the results table has frames the tracks do not: {unknown[:10]}"
                           f"{' ...' if len(unknown) > 10 else ''}")
    individuals = pd.Index([str(n) for n in tracks.individual_names])
    cols = individuals.get_indexer(table["individual"].astype(str))
    if (cols < 0).any():
        unknown = sorted(set(table["individual"].astype(str)[cols < 0]))
        raise SkelmaeError(f"the results table has individuals the tracks do not: {unknown}; "
                           f"the tracks have {list(individuals)}")
    flat = rows * len(individuals) + cols
    if len(np.unique(flat)) != len(flat):
        dup = pd.Series(flat).duplicated().to_numpy()
        k = int(np.flatnonzero(dup)[0])
        raise SkelmaeError(f"the results table has two rows for frame {int(frames[k])}, "
                           f"individual {table['individual'].iloc[k]}")
    return rows, cols


def column_array(table: pd.DataFrame, tracks: PoseTracks, column: str,
                 fill: Any = None) -> np.ndarray:
    """One column of ``table`` as a (frames, individuals) array aligned with ``tracks``.

    Rows the table lacks hold ``fill`` (default: -1 for integer columns, NaN for floats, None
    for names). Categorical columns come back as an object array of names (None = missing)."""
    return _column(table, tracks, column, fill, _row_positions(table, tracks))


def _column(table: pd.DataFrame, tracks: PoseTracks, column: str, fill: Any,
            positions: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    if column not in table.columns:
        raise SkelmaeError(f"the results table has no column '{column}'")
    rows, cols = positions
    series = table[column]
    shape = (tracks.n_frames, tracks.n_individuals)
    if isinstance(series.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            series.dtype):
        values = series.astype(object).where(series.notna(), None).to_numpy()
        out = np.full(shape, fill, dtype=object)
    elif pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        values = series.to_numpy(dtype=np.int64)
        out = np.full(shape, -1 if fill is None else fill, np.int64)
    else:
        values = pd.to_numeric(series).to_numpy(dtype=float, na_value=np.nan)
        dtype = np.float32 if series.dtype == np.float32 else np.float64
        out = np.full(shape, np.nan if fill is None else fill, dtype)
    out[rows, cols] = values
    return out


def results_from_table(table: pd.DataFrame, tracks: PoseTracks) -> Results:
    """The arrays of a results table (one made here or read back from a file), aligned with
    the rows of ``tracks``. Behaviour names come from the table's metadata, else from its
    ``p_<name>`` columns, else from the behaviour column's categories (sorted when it is
    plain text, as in a CSV)."""
    positions = _row_positions(table, tracks)
    meta = dict(table.attrs.get(METADATA_KEY) or {})
    shape = (tracks.n_frames, tracks.n_individuals)

    clusters = np.full(shape, -1, np.int64)
    if "cluster" in table.columns:
        values = _column(table, tracks, "cluster", None, positions)
        clusters = np.where(np.isfinite(values), values, -1).astype(np.int64)

    names = _behaviour_names(table, meta)
    behaviours = np.full(shape, -1, np.int64)
    if "behaviour" in table.columns:
        labels = _column(table, tracks, "behaviour", None, positions)
        lookup = {n: k for k, n in enumerate(names)}
        unknown = sorted({v for v in labels.ravel() if v is not None} - set(lookup))
        if unknown:
            raise SkelmaeError(f"the results table has behaviours {unknown} not among its "
                               f"behaviour names {names}")
        behaviours = np.vectorize(lambda v: -1 if v is None else lookup[v], otypes=[np.int64])(
            labels) if labels.size else behaviours

    probability = np.full(shape, np.nan, np.float32)
    if "probability" in table.columns:
        probability = _column(table, tracks, "probability", None,
                              positions).astype(np.float32)
    probabilities = None
    p_columns = [PROBABILITY_PREFIX + n for n in names]
    if names and all(c in table.columns for c in p_columns):
        probabilities = np.stack([_column(table, tracks, c, None, positions)
                                  for c in p_columns], axis=2).astype(np.float32)

    values = None
    emb_columns = sorted((c for c in table.columns if _EMBEDDING_COLUMN.match(str(c))),
                         key=lambda c: int(_EMBEDDING_COLUMN.match(c).group(1)))
    if emb_columns:
        rows, cols = positions
        values = np.full((*shape, len(emb_columns)), np.nan, np.float32)
        values[rows, cols] = table[emb_columns].to_numpy(dtype=np.float32, na_value=np.nan)

    cluster_names = meta.get("cluster_names")
    if cluster_names is None and "cluster_name" in table.columns:
        cluster_names = _cluster_names_from_column(table)
    return Results(
        frame_index=tracks.frame_index.copy(),
        individual_names=[str(n) for n in tracks.individual_names],
        clusters=clusters,
        behaviours=behaviours,
        behaviour_names=names,
        probability=probability,
        probabilities=probabilities,
        embedding_values=values,
        model_id=meta.get("model_id"),
        cluster_names=None if cluster_names is None else list(cluster_names),
        metadata=meta,
    )


def _behaviour_names(table: pd.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    if meta.get("behaviour_names") is not None:
        return [str(n) for n in meta["behaviour_names"]]
    from_p = [str(c)[len(PROBABILITY_PREFIX):] for c in table.columns
              if str(c).startswith(PROBABILITY_PREFIX)]
    if from_p:
        return from_p
    if "behaviour" not in table.columns:
        return []
    column = table["behaviour"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return sorted({str(v) for v in column.dropna()})


def _cluster_names_from_column(table: pd.DataFrame) -> list[str] | None:
    """Names by cluster id from the (cluster, cluster_name) pairs, when they cover 0..n-1."""
    pairs = table.loc[table["cluster"] >= 0, ["cluster", "cluster_name"]].drop_duplicates()
    ids = pairs["cluster"].astype(int).tolist()
    if sorted(ids) != list(range(len(ids))):
        return None
    return [str(n) for _, n in sorted(zip(ids, pairs["cluster_name"]))]
