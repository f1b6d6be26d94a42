"""Clustering real embeddings: a clusterer fitted on one recording (sleap_analysis_example),
saved and loaded, labels ANOTHER recording (sleap_flies13, same skeleton, same model) exactly
as the in-process clusterer does, for k-means, GMM and HDBSCAN; the labelling rules agree
with scikit-learn's own; bad input is refused.

The model is a tiny MAMP pretrained for 60 steps (seconds): clustering needs embeddings of a
real model, not good ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_skelmae import load_tracks
from napari_skelmae.analysis.bouts import frames_to_bouts
from napari_skelmae.analysis.clustering import (
    Clusterer,
    cluster,
    load_clusterer,
    score_cluster_counts,
)
from napari_skelmae.errors import SkelmaeError, SkelmaeWarning
from napari_skelmae.inference import Embeddings
from napari_skelmae.training import pretrain

from .conftest import data_path
from .shared_fixtures import one_thread  # noqa: F401

TINY = dict(dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)
WINDOW = dict(window_s=16 / 30, stride_s=4 / 30)
METHODS = ["kmeans", "gmm", "hdbscan"]


@pytest.fixture(scope="module")
def recordings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)
        fit = load_tracks(data_path("sleap_analysis_example", "predictions.slp"))
        other = load_tracks(data_path("sleap_flies13", "demo-flies13-preds.slp"))
    model = pretrain(fit, "mamp", max_steps=60, window=WINDOW, batch_size=16,
                     precision="float32", **TINY)
    return fit, model.embed(fit), other, model.embed(other)


@pytest.fixture(scope="module")
def fitted(recordings):
    _, emb, _, _ = recordings
    cache = {}

    def get(method):
        if method not in cache:
            cache[method] = cluster(emb, method, None if method == "hdbscan" else 6)
        return cache[method]

    return get


@pytest.mark.parametrize("method", METHODS)
def test_saved_clusterer_labels_another_recording_as_in_process(recordings, fitted, method,
                                                                 tmp_path):
    tracks, emb, other, other_emb = recordings
    labels, clusterer = fitted(method)
    assert labels.shape == (tracks.n_frames, tracks.n_individuals) and labels.dtype == np.int64
    path = clusterer.save(tmp_path / f"{method}.clusterer")
    loaded = load_clusterer(path)
    assert loaded.method == method and loaded.n_clusters == clusterer.n_clusters
    assert loaded.model_id == emb.model_id and loaded.dim == emb.shape[2]
    in_process = clusterer.predict(other_emb)
    from_file = loaded.predict(other_emb)
    np.testing.assert_array_equal(from_file, in_process)
    np.testing.assert_array_equal(loaded.predict(emb), labels)  # and the fitted recording
    # a real test: the other recording gets several outcomes (clusters; for HDBSCAN, whose
    # small clusters do not occur in the other recording, a cluster and noise)
    present = np.isfinite(np.asarray(other_emb)).all(axis=2)
    found = np.unique(in_process[present])
    assert len(found) >= 2, found
    if method != "hdbscan":
        assert (found >= 0).all()
    with open(path, "rb") as f:
        assert f.read(2) not in (b"\x80\x04", b"\x80\x05")  # not a pickle


@pytest.mark.parametrize("method", METHODS)
def test_labels_missing_rows_and_cluster_numbering(recordings, fitted, method):
    _, emb, _, _ = recordings
    labels, clusterer = fitted(method)
    absent = ~np.isfinite(np.asarray(emb)).all(axis=2)
    assert absent.any()
    assert (labels[absent] == -1).all()
    if method != "hdbscan":
        assert (labels[~absent] >= 0).all()
        # every row was fitted: the sizes are the shares of the labels, largest first
        counts = np.bincount(labels[~absent], minlength=clusterer.n_clusters)
        np.testing.assert_allclose(clusterer.cluster_sizes, counts / counts.sum(), atol=1e-6)
    sizes = clusterer.cluster_sizes
    assert sizes == sorted(sizes, reverse=True)


def _renumbered_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same partition up to the numbering (noise -1 stays -1)."""
    if ((a == -1) != (b == -1)).any():
        return False
    pairs = set(zip(a[a >= 0].tolist(), b[b >= 0].tolist()))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def _standardised_rows(emb):
    rows = np.asarray(emb).reshape(-1, emb.shape[2]).astype(np.float64)
    ok = np.isfinite(rows).all(axis=1)
    z = rows[ok]
    return ok, (z - z.mean(0)) / z.std(0)


def test_kmeans_and_gmm_rules_agree_with_scikit_learn(recordings, fitted):
    """Our stored-parameter rules give scikit-learn's own predictions on the same fit."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    _, emb, _, other_emb = recordings
    ok, z = _standardised_rows(emb)
    labels_km, km_clusterer = fitted("kmeans")
    km = KMeans(6, n_init=4, random_state=0).fit(z)
    assert _renumbered_equal(labels_km.reshape(-1)[ok], km.predict(z))
    labels_gm, gm_clusterer = fitted("gmm")
    gm = GaussianMixture(6, covariance_type="full", random_state=0, reg_covar=1e-6).fit(z)
    assert _renumbered_equal(labels_gm.reshape(-1)[ok], gm.predict(z))
    # on the other recording too (the clusterer's standardisation is the fitted one's)
    rows = np.asarray(other_emb).reshape(-1, other_emb.shape[2]).astype(np.float64)
    keep = np.isfinite(rows).all(axis=1)
    raw = np.asarray(emb).reshape(-1, emb.shape[2])[ok].astype(np.float64)
    z_other = (rows[keep] - raw.mean(0)) / raw.std(0)
    assert _renumbered_equal(gm_clusterer.predict(other_emb).reshape(-1)[keep],
                             gm.predict(z_other))
    probabilities = gm_clusterer.predict_proba_rows(rows[keep][:50])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-9)


def test_hdbscan_fitted_rows_keep_their_hdbscan_labels(recordings):
    """With every row fitted, the labels are HDBSCAN's own (the nearest-core rule gives a
    fitted row back its label); noise stays -1."""
    from sklearn.cluster import HDBSCAN

    _, emb, _, _ = recordings
    one = emb[:, :1]  # one fly: 3000 rows, fitted in full
    labels, clusterer = cluster(one, "hdbscan", min_cluster_size=30, max_fit_rows=10_000)
    ok, z = _standardised_rows(one)
    direct = HDBSCAN(min_cluster_size=30, min_samples=30, copy=True).fit(z).labels_
    assert clusterer.settings["min_cluster_size"] == 30
    assert _renumbered_equal(labels.reshape(-1)[ok], direct)
    assert (direct == -1).any() and (direct >= 0).any()


def test_same_seed_same_labels_and_n_clusters_for_hdbscan(recordings):
    _, emb, _, _ = recordings
    a, _ = cluster(emb, "kmeans", 4, seed=3)
    b, _ = cluster(emb, "kmeans", 4, seed=3)
    np.testing.assert_array_equal(a, b)
    with pytest.warns(SkelmaeWarning, match="HDBSCAN chooses the number of clusters"):
        cluster(emb[:600], "hdbscan", 5)


def test_several_recordings_at_once(recordings):
    _, emb, _, other_emb = recordings
    labels, clusterer = cluster([emb, other_emb], "kmeans", 5, pca=8)
    assert [lab.shape for lab in labels] == [emb.shape[:2], other_emb.shape[:2]]
    np.testing.assert_array_equal(clusterer.predict(other_emb), labels[1])
    assert clusterer.pca_components.shape == (8, emb.shape[2])


def test_min_bout_frames(recordings, tmp_path):
    tracks, emb, other, other_emb = recordings
    with pytest.raises(SkelmaeError, match="needs the video frames of the rows"):
        cluster(emb, "kmeans", 6, min_bout_frames=5)
    labels, clusterer = cluster(emb, "kmeans", 6, min_bout_frames=5,
                                frame_index=tracks.frame_index)
    raw, _ = cluster(emb, "kmeans", 6)
    assert (labels != raw).any()
    bouts = frames_to_bouts(labels, [str(k) for k in range(6)], tracks.frame_index,
                            tracks.individual_names)
    short = bouts[bouts["stop_frame"] - bouts["start_frame"] + 1 < 5]
    # a short bout survives only with no labelled neighbour (at a gap or next to absence)
    for row in short.itertuples():
        i = tracks.individual_names.index(row.individual)
        before = labels[row.start_frame - 1, i] if row.start_frame > 0 else -1
        after = labels[row.stop_frame + 1, i] if row.stop_frame + 1 < len(labels) else -1
        assert before == -1 and after == -1
    loaded = load_clusterer(clusterer.save(tmp_path / "c"))
    assert loaded.min_bout_frames == 5
    np.testing.assert_array_equal(loaded.predict(other_emb, other.frame_index),
                                  clusterer.predict(other_emb, other.frame_index))
    with pytest.raises(SkelmaeError, match="needs the video frames"):
        loaded.predict(other_emb)
    assert (loaded.predict(other_emb, min_bout_frames=None) == clusterer.predict(
        other_emb, min_bout_frames=None)).all()


def test_embeddings_of_another_model_are_refused(recordings, fitted):
    _, emb, _, other_emb = recordings
    _, clusterer = fitted("kmeans")
    foreign = Embeddings(np.asarray(other_emb), model_id="0123456789abcdef")
    with pytest.raises(SkelmaeError, match="come from model 0123456789abcdef.*fitted on "
                       f"embeddings of model {emb.model_id}"):
        clusterer.predict(foreign)
    with pytest.raises(SkelmaeError, match="fitted on 32-dimensional embeddings, these have 8"):
        clusterer.predict(np.asarray(other_emb)[..., :8])
    with pytest.warns(SkelmaeWarning, match="cannot check they come from model"):
        clusterer.predict(np.asarray(other_emb))
    with pytest.raises(SkelmaeError, match="2 different models"):
        cluster([emb, foreign], "kmeans", 3)


@pytest.mark.parametrize("call, message", [
    (lambda e: cluster(e, "spectral"), "unknown clustering method 'spectral'"),
    (lambda e: cluster(e, "kmeans", 0), "n_clusters must be an integer >= 1"),
    (lambda e: cluster(e[..., 0], "kmeans"), r"must be \(frames, individuals, D\)"),
    (lambda e: cluster(np.full((5, 1, 4), np.nan), "kmeans", 2), "only 0 rows have an "
                                                                  "embedding"),
    (lambda e: cluster(e, "kmeans", 3, pca=500), "pca=500 components"),
    (lambda e: cluster(e, "kmeans", 3, bogus=1), "kmeans: .*bogus"),
])
def test_bad_arguments(recordings, call, message):
    _, emb, _, _ = recordings
    with pytest.raises(SkelmaeError, match=message):
        call(emb)


def test_files_written_atomically_and_foreign_files_refused(recordings, fitted, tmp_path,
                                                             monkeypatch):
    _, emb, _, _ = recordings
    _, clusterer = fitted("gmm")
    path = clusterer.save(tmp_path / "c.clusterer")
    before = path.read_bytes()
    import safetensors.numpy

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(SkelmaeError, match="disk full"):
        clusterer.save(path)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.clusterer"]  # no temp file left
    monkeypatch.undo()
    with pytest.raises(SkelmaeError, match="does not exist"):
        clusterer.save(tmp_path / "no" / "such" / "folder.clusterer")
    truncated = tmp_path / "truncated.clusterer"
    truncated.write_bytes(before[: len(before) // 2])
    with pytest.raises(SkelmaeError, match="not a readable clusterer file"):
        load_clusterer(truncated)
    with pytest.raises(SkelmaeError, match="no such clusterer file"):
        load_clusterer(tmp_path / "missing")
    other = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"x": np.zeros(3)}, str(other))
    with pytest.raises(SkelmaeError, match="not a clusterer file"):
        load_clusterer(other)


def test_score_cluster_counts(recordings):
    _, emb, _, _ = recordings
    km = score_cluster_counts(emb, range(2, 6), "kmeans", sample_size=500)
    assert km["n_clusters"].tolist() == [2, 3, 4, 5]
    assert ((km["silhouette"] > -1) & (km["silhouette"] < 1)).all()
    assert (np.diff(km["inertia"]) < 0).all()  # more clusters, less within-cluster spread
    gm = score_cluster_counts(emb, [2, 4], "gmm", sample_size=500)
    assert np.isfinite(gm[["bic", "aic", "silhouette"]].to_numpy()).all()
    with pytest.raises(SkelmaeError, match="chooses its own number"):
        score_cluster_counts(emb, method="hdbscan")


def test_clusterer_repr_and_unknown_method():
    with pytest.raises(SkelmaeError, match="unknown clustering method"):
        Clusterer("dbscan", mean=np.zeros(2), scale=np.ones(2), arrays={})
