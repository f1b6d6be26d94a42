"""Unsupervised behaviour motifs: clustering per-frame embeddings, and applying the same
clusters to new recordings.

``cluster(embeddings, method)`` standardises the embeddings (and optionally projects them on
their first principal components), fits k-means, a Gaussian mixture or HDBSCAN on the rows
where the animal is present, and returns per-frame labels plus a :class:`Clusterer` that
labels any other recording embedded by the SAME model with exactly the same rule. The
in-process labels are the clusterer's own ``predict`` of the training rows, so a saved and
reloaded clusterer gives bit-identical labels on every recording.

How new rows are labelled:

* k-means: the nearest centre (Euclidean, in the standardised/PCA space);
* GMM: the component of highest posterior (full covariances, computed from the stored
  weights, means and Cholesky factors of the precisions, with the formula of the density);
* HDBSCAN (which has no predict of its own): the fitted rows (a random sample of at most
  ``max_fit_rows``) are stored with their HDBSCAN labels and core distances (distance to the
  ``min_samples``-th nearest fitted row, the point itself included, as HDBSCAN defines it). A
  new row takes the label of its nearest fitted row if it lies inside that row's core
  distance (so it would have been a neighbour at the density where that row joined its
  cluster), else it is noise (-1). Fitted rows get back exactly their HDBSCAN label.

Clusters are numbered by size on the fitted rows (0 = largest) so that colours are stable;
-1 marks rows without an embedding (and HDBSCAN noise). The file is safetensors arrays plus a
JSON description, no pickle.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SkelmaeError, SkelmaeWarning
from ._common import (
    as_embedding_list,
    check_model,
    need,
    read_arrays,
    resolve_frame_index,
    write_arrays,
)
from .bouts import remove_short_bouts

__all__ = ["METHODS", "Clusterer", "cluster", "load_clusterer", "score_cluster_counts"]

METHODS = ("kmeans", "gmm", "hdbscan")
FORMAT = "napari-skelmae clusterer"
FORMAT_VERSION = 1
METADATA_KEY = "skelmae_clusterer"
#: rows at most used for fitting (a random sample beyond that); HDBSCAN stores its fitted rows
MAX_FIT_ROWS = {"kmeans": 200_000, "gmm": 100_000, "hdbscan": 5_000}
_ARRAYS = {
    "kmeans": ("centers",),
    "gmm": ("weights", "means", "precisions_cholesky"),
    "hdbscan": ("points", "point_labels", "core_distances"),
}


class Clusterer:
    """A fitted clustering of embeddings that labels new recordings the same way.

    Build one with :func:`cluster` or :func:`load_clusterer`. ``n_clusters`` is the number of
    clusters (HDBSCAN: the number it found), ``cluster_sizes`` their share of the fitted rows
    (descending), ``model_id`` and ``dim`` the model and dimension of the embeddings it was
    fitted on, ``settings`` the options of the fit.
    """

    def __init__(
        self,
        method: str,
        *,
        mean: np.ndarray,
        scale: np.ndarray,
        arrays: dict[str, np.ndarray],
        pca_components: np.ndarray | None = None,
        pca_mean: np.ndarray | None = None,
        model_id: str | None = None,
        settings: dict[str, Any] | None = None,
        cluster_sizes: list[float] | None = None,
        n_fit_rows: int = 0,
    ):
        if method not in METHODS:
            raise SkelmaeError(f"unknown clustering method {method!r}; choose one of {METHODS}")
        self.method = method
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.pca_components = None if pca_components is None else np.asarray(
            pca_components, np.float64)
        self.pca_mean = None if pca_mean is None else np.asarray(pca_mean, np.float64)
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.model_id = model_id
        self.settings = dict(settings or {})
        self.cluster_sizes = list(cluster_sizes or [])
        self.n_fit_rows = int(n_fit_rows)

    # ---- facts -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_clusters(self) -> int:
        if self.method == "kmeans":
            return int(self.arrays["centers"].shape[0])
        if self.method == "gmm":
            return int(self.arrays["weights"].shape[0])
        labels = self.arrays["point_labels"]
        return int(labels.max() + 1) if labels.size and labels.max() >= 0 else 0

    @property
    def min_bout_frames(self) -> int | None:
        return self.settings.get("min_bout_frames")

    def __repr__(self) -> str:
        origin = f", model {self.model_id}" if self.model_id else ""
        return (f"Clusterer({self.method}, {self.n_clusters} clusters on {self.dim}-D "
                f"embeddings{origin})")

    # ---- labelling ---------------------------------------------------------------------
    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Rows (N, D) in the space the clusters live in (standardised, then PCA)."""
        z = (np.asarray(rows, np.float64) - self.mean) / self.scale
        if self.pca_components is not None:
            z = (z - self.pca_mean) @ self.pca_components.T
        return z

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Cluster of each finite row (N, D) -> (N,) int64 (HDBSCAN: -1 for noise)."""
        z = self.transform(rows)
        if len(z) == 0:
            return np.zeros(0, np.int64)
        if self.method == "kmeans":
            return _nearest_centre(z, self.arrays["centers"])
        if self.method == "gmm":
            return np.argmax(self._gmm_log_joint(z), axis=1).astype(np.int64)
        return self._hdbscan_rule(z)

    def predict(
        self, embeddings: Any, frame_index: Any = None, *, min_bout_frames: Any = "fitted"
    ) -> np.ndarray | list[np.ndarray]:
        """Labels (frames, individuals) int64 of one recording's embeddings (a list gives a
        list), -1 where the embedding is NaN. Bouts shorter than ``min_bout_frames`` (default:
        the value the clusterer was fitted with) are merged into their neighbours, which needs
        the rows' video frames ``frame_index`` (``tracks.frame_index``)."""
        arrays, model_id, listed = as_embedding_list(embeddings)
        check_model("clusterer", self.model_id, self.dim, model_id, arrays[0].shape[2])
        if min_bout_frames == "fitted":
            min_bout_frames = self.min_bout_frames
        frames = resolve_frame_index(frame_index, arrays, embeddings, listed)
        if min_bout_frames is not None and frames is None:
            raise SkelmaeError(
                f"min_bout_frames={min_bout_frames} needs the video frames of the rows: pass "
                "frame_index=tracks.frame_index (or min_bout_frames=None)"
            )
        out = []
        for k, values in enumerate(arrays):
            flat = values.reshape(-1, values.shape[2])
            ok = np.isfinite(flat).all(axis=1)
            labels = np.full(len(flat), -1, np.int64)
            labels[ok] = self.predict_rows(flat[ok])
            labels = labels.reshape(values.shape[:2])
            if min_bout_frames is not None:
                labels = remove_short_bouts(labels, frames[k], min_bout_frames)
            out.append(labels)
        return out if listed else out[0]

    def predict_proba_rows(self, rows: np.ndarray) -> np.ndarray:
        """GMM only: posterior probability of each component (N, K)."""
        if self.method != "gmm":
            raise SkelmaeError(f"{self.method} clusters have no probabilities; use 'gmm'")
        log_joint = self._gmm_log_joint(self.transform(rows))
        log_joint -= log_joint.max(axis=1, keepdims=True)
        p = np.exp(log_joint)
        return p / p.sum(axis=1, keepdims=True)

    def _gmm_log_joint(self, z: np.ndarray) -> np.ndarray:
        """log(weight_k) + log N(z | mean_k, cov_k), with P_k = chol(cov_k^-1) stored:
        log N = -d/2 log 2pi + sum log diag P_k - |(z - mean_k) P_k|^2 / 2."""
        weights, means = self.arrays["weights"], self.arrays["means"]
        chol = self.arrays["precisions_cholesky"]
        d = z.shape[1]
        out = np.empty((len(z), len(weights)))
        for k in range(len(weights)):
            y = (z - means[k]) @ chol[k]
            log_det = np.log(np.diag(chol[k])).sum()
            out[:, k] = -0.5 * (d * np.log(2 * np.pi) + (y * y).sum(axis=1)) + log_det
        with np.errstate(divide="ignore"):
            return out + np.log(weights)

    def _hdbscan_rule(self, z: np.ndarray) -> np.ndarray:
        from sklearn.neighbors import NearestNeighbors

        points = self.arrays["points"]
        labels, core = self.arrays["point_labels"], self.arrays["core_distances"]
        nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(points)
        out = np.empty(len(z), np.int64)
        for a in range(0, len(z), 2048):  # bounded memory: 2048 x stored rows distances
            dist, idx = nn.kneighbors(z[a:a + 2048])
            dist, idx = dist[:, 0], idx[:, 0]
            inside = dist <= core[idx] * (1 + 1e-9) + 1e-9  # fitted rows themselves: d ~ 0
            out[a:a + 2048] = np.where(inside, labels[idx], -1)
        return out

    # ---- file --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "method": self.method,
            "n_clusters": self.n_clusters,
            "dim": self.dim,
            "model_id": self.model_id,
            "pca": self.pca_components is not None,
            "settings": self.settings,
            "cluster_sizes": self.cluster_sizes,
            "n_fit_rows": self.n_fit_rows,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the clusterer (safetensors + JSON, atomically); returns the path."""
        arrays = {"mean": self.mean, "scale": self.scale, **self.arrays}
        if self.pca_components is not None:
            arrays["pca_components"] = self.pca_components
            arrays["pca_mean"] = self.pca_mean
        return write_arrays(path, arrays, METADATA_KEY, self.describe(), "clusterer")


def load_clusterer(path: str | os.PathLike) -> Clusterer:
    """Read a clusterer file written by :meth:`Clusterer.save` (nothing is unpickled)."""
    path = Path(path)
    arrays, meta = read_arrays(path, METADATA_KEY, FORMAT, FORMAT_VERSION, "clusterer")
    method = meta.get("method")
    if method not in METHODS:
        raise SkelmaeError(f"'{path}': unknown clustering method {method!r}")
    need(arrays, ("mean", "scale", *_ARRAYS[method]), path, "clusterer")
    pca = meta.get("pca")
    if pca:
        need(arrays, ("pca_components", "pca_mean"), path, "clusterer")
    clusterer = Clusterer(
        method,
        mean=arrays["mean"],
        scale=arrays["scale"],
        arrays={k: arrays[k] for k in _ARRAYS[method]},
        pca_components=arrays.get("pca_components") if pca else None,
        pca_mean=arrays.get("pca_mean") if pca else None,
        model_id=meta.get("model_id"),
        settings=meta.get("settings") or {},
        cluster_sizes=meta.get("cluster_sizes") or [],
        n_fit_rows=meta.get("n_fit_rows") or 0,
    )
    if clusterer.dim != meta.get("dim") or (
        pca and clusterer.pca_components.shape[1] != clusterer.dim
    ):
        raise SkelmaeError(f"'{path}': the arrays do not match the description (dimension)")
    return clusterer


# --------------------------------------------------------------------------------- fit
def _nearest_centre(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    out = np.empty(len(z), np.int64)
    c2 = (centers * centers).sum(axis=1)
    for a in range(0, len(z), 65536):
        block = z[a:a + 65536]
        d2 = c2[None, :] - 2.0 * block @ centers.T  # |z|^2 is the same for every centre
        out[a:a + 65536] = np.argmin(d2, axis=1)
    return out


def _fit_rows(
    arrays: list[np.ndarray], max_rows: int, seed: int
) -> tuple[np.ndarray, int]:
    """Finite rows of every recording (a seeded random sample of ``max_rows`` at most)."""
    rows = np.concatenate([a.reshape(-1, a.shape[2]) for a in arrays])
    rows = rows[np.isfinite(rows).all(axis=1)]
    n = len(rows)
    if n > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
        rows = rows[pick]
    return rows.astype(np.float64), n


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SkelmaeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _preprocess(rows: np.ndarray, pca: int | None, seed: int) -> dict[str, Any]:
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[~(scale > 1e-12)] = 1.0
    out: dict[str, Any] = {"mean": mean, "scale": scale, "pca_components": None,
                           "pca_mean": None}
    if pca is not None:
        pca = _check_int("pca", pca, 1)
        if pca > min(rows.shape):
            raise SkelmaeError(f"pca={pca} components from {rows.shape[0]} rows of "
                               f"{rows.shape[1]} dimensions is too many")
        from sklearn.decomposition import PCA

        z = (rows - mean) / scale
        fitted = PCA(n_components=pca, svd_solver="full", random_state=seed).fit(z)
        out["pca_components"] = fitted.components_.astype(np.float64)
        out["pca_mean"] = fitted.mean_.astype(np.float64)
    return out


def _fit_method(
    method: str, z: np.ndarray, n_clusters: int | None, seed: int, options: dict[str, Any]
) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, Any]]:
    """Raw fitted arrays, the fit's own labels when the method has them only for the fitted
    rows (HDBSCAN), and the settings to remember."""
    if method == "kmeans":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=n_clusters, n_init=options.pop("n_init", 4), random_state=seed,
                    **options).fit(z)
        return {"centers": km.cluster_centers_.astype(np.float64)}, None, {}
    if method == "gmm":
        from sklearn.mixture import GaussianMixture

        gm = GaussianMixture(n_components=n_clusters, covariance_type="full",
                             random_state=seed, reg_covar=options.pop("reg_covar", 1e-6),
                             **options).fit(z)
        if not gm.converged_:
            warnings.warn("the Gaussian mixture did not converge; raise max_iter or use fewer "
                          "clusters", SkelmaeWarning, stacklevel=4)
        return {"weights": gm.weights_.astype(np.float64),
                "means": gm.means_.astype(np.float64),
                "precisions_cholesky": gm.precisions_cholesky_.astype(np.float64)}, None, {}
    from sklearn.cluster import HDBSCAN
    from sklearn.neighbors import NearestNeighbors

    min_cluster_size = options.pop("min_cluster_size", None)
    if min_cluster_size is None:
        min_cluster_size = max(5, round(0.01 * len(z)))
    min_cluster_size = _check_int("min_cluster_size", min_cluster_size, 2)
    min_samples = options.pop("min_samples", None)
    min_samples = min_cluster_size if min_samples is None else _check_int(
        "min_samples", min_samples, 1)
    if min_samples > len(z):
        raise SkelmaeError(f"min_samples={min_samples} is more than the {len(z)} rows")
    fitted = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                     copy=True, **options).fit(z)
    dist, _ = NearestNeighbors(n_neighbors=min_samples, algorithm="brute").fit(z).kneighbors(z)
    arrays = {"points": z.copy(), "point_labels": fitted.labels_.astype(np.int64),
              "core_distances": dist[:, -1].astype(np.float64)}
    return arrays, fitted.labels_.astype(np.int64), {"min_cluster_size": min_cluster_size,
                                                      "min_samples": min_samples}


def _number_by_size(method: str, arrays: dict[str, np.ndarray], labels: np.ndarray
                    ) -> tuple[dict[str, np.ndarray], list[float]]:
    """Renumber clusters so that 0 is the largest on the fitted rows (ties: old order)."""
    k = {"kmeans": lambda: len(arrays["centers"]), "gmm": lambda: len(arrays["weights"]),
         "hdbscan": lambda: int(labels.max(initial=-1)) + 1}[method]()
    counts = np.bincount(labels[labels >= 0], minlength=k)
    order = np.argsort(-counts, kind="stable")
    sizes = (counts[order] / max(len(labels), 1)).round(6).tolist()
    if method == "hdbscan":
        new = np.empty(k, np.int64)
        new[order] = np.arange(k)
        arrays = dict(arrays)
        old = arrays["point_labels"]
        arrays["point_labels"] = np.where(old >= 0, new[np.maximum(old, 0)], -1)
        return arrays, sizes
    return {name: a[order] for name, a in arrays.items()}, sizes


def cluster(
    embeddings: Any,
    method: str = "kmeans",
    n_clusters: int | None = None,
    *,
    min_bout_frames: int | None = None,
    frame_index: Any = None,
    pca: int | None = None,
    seed: int = 0,
    max_fit_rows: int | None = None,
    **options: Any,
) -> tuple[np.ndarray | list[np.ndarray], Clusterer]:
    """Cluster per-frame embeddings; returns (labels, clusterer).

    Parameters
    ----------
    embeddings
        ``embed(model, tracks)`` of one recording (frames, individuals, D), or a list of
        recordings embedded by the same model (then ``labels`` is a list too).
    method
        ``"kmeans"``, ``"gmm"`` (full-covariance Gaussian mixture) or ``"hdbscan"``.
    n_clusters
        Clusters for k-means and GMM (default 8). HDBSCAN finds its own number (tune it with
        ``min_cluster_size``, default 1 % of the fitted rows, and ``min_samples``).
    min_bout_frames
        Merge label runs shorter than this many frames into their neighbours (needs
        ``frame_index``, the tracks' video frames); remembered by the clusterer.
    pca
        Project the standardised embeddings on this many principal components first.
    seed
        Seeds the sampling and the fit: the same call gives the same labels.
    max_fit_rows
        Rows at most used to fit (a seeded random sample beyond; every row is labelled).
    **options
        Passed to scikit-learn's KMeans / GaussianMixture / HDBSCAN.

    Labels are int64 (frames, individuals), -1 where the embedding is NaN (and HDBSCAN
    noise), clusters numbered by size (0 = largest).
    """
    if method not in METHODS:
        raise SkelmaeError(f"unknown clustering method {method!r}; choose one of {METHODS}")
    seed = _check_int("seed", seed, 0)
    arrays, model_id, listed = as_embedding_list(embeddings)
    if method == "hdbscan":
        if n_clusters is not None:
            warnings.warn("HDBSCAN chooses the number of clusters itself; n_clusters is "
                          "ignored (use min_cluster_size)", SkelmaeWarning, stacklevel=2)
        n_clusters = None
    else:
        n_clusters = _check_int("n_clusters", 8 if n_clusters is None else n_clusters, 1)
    if min_bout_frames is not None:
        min_bout_frames = _check_int("min_bout_frames", min_bout_frames, 1)
        if resolve_frame_index(frame_index, arrays, embeddings, listed) is None:
            raise SkelmaeError(
                f"min_bout_frames={min_bout_frames} needs the video frames of the rows: pass "
                "frame_index=tracks.frame_index"
            )
    max_rows = MAX_FIT_ROWS[method] if max_fit_rows is None else _check_int(
        "max_fit_rows", max_fit_rows, 2)
    rows, n_finite = _fit_rows(arrays, max_rows, seed)
    needed = max(2, n_clusters or 2)
    if len(rows) < needed:
        raise SkelmaeError(f"only {len(rows)} rows have an embedding (the animal is absent "
                           f"elsewhere); {method} needs at least {needed}")
    pre = _preprocess(rows, pca, seed)
    probe = Clusterer(method, mean=pre["mean"], scale=pre["scale"], arrays={},
                      pca_components=pre["pca_components"], pca_mean=pre["pca_mean"])
    z = probe.transform(rows)
    try:
        raw, fit_labels, extra = _fit_method(method, z, n_clusters, seed, dict(options))
    except TypeError as e:  # an option the scikit-learn estimator does not take
        raise SkelmaeError(f"{method}: {e}") from None
    probe.arrays = raw
    labels_on_fit = probe.predict_rows(rows) if fit_labels is None else fit_labels
    arrays_sorted, sizes = _number_by_size(method, raw, labels_on_fit)
    if method == "hdbscan" and not (arrays_sorted["point_labels"] >= 0).any():
        warnings.warn("HDBSCAN found no cluster (every row is noise); lower min_cluster_size",
                      SkelmaeWarning, stacklevel=2)
    settings = {"seed": seed, "n_clusters": n_clusters, "min_bout_frames": min_bout_frames,
                "pca": pca, "max_fit_rows": max_rows,
                **{k: v for k, v in options.items() if isinstance(v, (int, float, str, bool))},
                **extra}
    clusterer = Clusterer(
        method, mean=pre["mean"], scale=pre["scale"], arrays=arrays_sorted,
        pca_components=pre["pca_components"], pca_mean=pre["pca_mean"], model_id=model_id,
        settings=settings, cluster_sizes=sizes, n_fit_rows=len(rows),
    )
    clusterer.settings["n_finite_rows"] = int(n_finite)
    frames = resolve_frame_index(frame_index, arrays, embeddings, listed)
    if frames is not None and not listed:
        frames = frames[0]
    labels = clusterer.predict(embeddings, frame_index=frames)
    return labels, clusterer


# ------------------------------------------------------------------------ cluster counts
def score_cluster_counts(
    embeddings: Any,
    counts: Any = range(2, 13),
    method: str = "kmeans",
    *,
    pca: int | None = None,
    sample_size: int = 2000,
    seed: int = 0,
    max_fit_rows: int | None = None,
) -> pd.DataFrame:
    """How well each number of clusters fits: one row per count.

    Columns: ``n_clusters``; ``silhouette`` (-1..1, higher is better, on a seeded sample of
    ``sample_size`` rows), ``calinski_harabasz`` (higher better) and ``davies_bouldin``
    (lower better) on the same sample; ``smallest_cluster`` (share of rows); k-means adds
    ``inertia`` (within-cluster sum of squares per row; look for the elbow), GMM ``bic`` and
    ``aic`` (lower is better). Fits exactly as :func:`cluster` does with the same options.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    if method not in ("kmeans", "gmm"):
        raise SkelmaeError(f"score_cluster_counts compares cluster counts of 'kmeans' or "
                           f"'gmm'; {method!r} chooses its own number")
    counts = [_check_int("cluster count", c, 2) for c in counts]
    if not counts:
        raise SkelmaeError("no cluster counts to score")
    sample_size = _check_int("sample_size", sample_size, 10)
    arrays, _, _ = as_embedding_list(embeddings)
    max_rows = MAX_FIT_ROWS[method] if max_fit_rows is None else _check_int(
        "max_fit_rows", max_fit_rows, 2)
    rows, _ = _fit_rows(arrays, max_rows, seed)
    if len(rows) <= max(counts):
        raise SkelmaeError(f"only {len(rows)} rows have an embedding, too few for "
                           f"{max(counts)} clusters")
    pre = _preprocess(rows, pca, seed)
    probe = Clusterer(method, mean=pre["mean"], scale=pre["scale"], arrays={},
                      pca_components=pre["pca_components"], pca_mean=pre["pca_mean"])
    z = probe.transform(rows)
    pick = np.random.default_rng(seed + 1).choice(len(z), min(sample_size, len(z)),
                                                  replace=False)
    records = []
    for k in counts:
        raw, _, _ = _fit_method(method, z, k, seed, {})
        probe.arrays = raw
        labels = probe.predict_rows(rows)
        sample = labels[pick]
        record: dict[str, Any] = {"n_clusters": k}
        if len(np.unique(sample)) > 1:
            record["silhouette"] = float(silhouette_score(z[pick], sample))
            record["calinski_harabasz"] = float(calinski_harabasz_score(z[pick], sample))
            record["davies_bouldin"] = float(davies_bouldin_score(z[pick], sample))
        else:
            record.update(silhouette=np.nan, calinski_harabasz=np.nan, davies_bouldin=np.nan)
        record["smallest_cluster"] = float(np.bincount(labels, minlength=k).min() / len(labels))
        if method == "kmeans":
            centers = raw["centers"][labels]
            record["inertia"] = float(((z - centers) ** 2).sum() / len(z))
        else:
            log_joint = probe._gmm_log_joint(z)
            top = log_joint.max(axis=1, keepdims=True)
            log_likelihood = float((top[:, 0] + np.log(np.exp(log_joint - top).sum(1))).sum())
            d = z.shape[1]
            n_params = k * d + k * d * (d + 1) / 2 + (k - 1)
            record["bic"] = -2 * log_likelihood + n_params * np.log(len(z))
            record["aic"] = -2 * log_likelihood + 2 * n_params
        records.append(record)
    return pd.DataFrame.from_records(records)
