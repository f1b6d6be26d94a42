"""The napari console: every dock widget's step is one call (cluster, classify, export a points
layer), with the same effect on the layers, the views and the shared results."""

from __future__ import annotations

import numpy as np
import pytest

import napari_skelmae as sk
from napari_skelmae.analysis.bouts import frames_to_bouts
from napari_skelmae.napari.widgets._common import session

pytestmark = pytest.mark.gui

TINY = dict(dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)


@pytest.fixture(scope="module")
def model():
    tracks = sk.sample_tracks()
    return sk.pretrain(tracks, "mamp", max_steps=10, batch_size=16, precision="float32",
                       window=dict(window_s=16 / 30, stride_s=8 / 30), **TINY)


def _wing_bouts(tracks):
    """'spread' when a wing tip is far from the body axis (a rule on the real keypoints)."""
    k = tracks.keypoint_names
    thorax, head, wing = (tracks.positions[:, :, k.index(n)] for n in ("thorax", "head", "wingL"))
    axis, arm = head - thorax, wing - thorax
    cos = (axis * arm).sum(-1) / (np.linalg.norm(axis, axis=-1) * np.linalg.norm(arm, axis=-1))
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    codes = np.where(np.isfinite(angle), (angle < 150).astype(int), -1)
    bouts = frames_to_bouts(codes, ["folded", "spread"], tracks.frame_index,
                            tracks.individual_names)
    return bouts[bouts.stop_frame - bouts.start_frame >= 4]


def test_cluster_classify_export_in_three_calls(make_napari_viewer, model, tmp_path):
    viewer = make_napari_viewer()
    tracks = sk.sample_tracks()
    layers = sk.show_tracks(tracks, viewer=viewer)
    points = next(ly for ly in layers if ly._type_string == "points")
    before = points.face_color.copy()

    saved = tmp_path / "flies.clusterer"
    result = sk.cluster_layer(points, model, viewer=viewer, n_clusters=4, save_clusterer=saved)
    assert result["labels"].shape == (tracks.n_frames, tracks.n_individuals)
    assert "cluster" in points.features and not np.allclose(points.face_color, before)
    assert session(viewer).results(points).clusters is result["labels"]
    assert result["saved"] == saved and saved.is_file()
    again = sk.cluster_layer(points, model, viewer=viewer, clusterer=saved)  # applied, not fit
    np.testing.assert_array_equal(again["labels"], result["labels"])

    clf = sk.classify_layer(points.name, _wing_bouts(tracks), viewer=viewer, cv=3)
    assert list(clf.names) == ["folded", "spread"]
    assert set(points.features["behaviour"].astype(str)) <= {"folded", "spread", "none"}
    assert clf.cv_report is not None and "f1" in clf.cv_report.columns

    files = sk.export_layer(points, tmp_path, viewer=viewer)
    table = sk.read_results(files["parquet"])
    assert {"cluster", "behaviour", "p_folded", "p_spread"} <= set(table.columns)
    np.testing.assert_array_equal(
        table.sort_values(["frame", "individual"])["cluster"].to_numpy()[:10],
        result["labels"][:5].ravel())
    assert files["boris"].is_file() and files["slp"].is_file()


def test_console_errors_are_plain_messages(make_napari_viewer, model):
    viewer = make_napari_viewer()
    sk.show_tracks(sk.sample_tracks(), viewer=viewer)
    with pytest.raises(sk.SkelmaeError, match="no layer"):
        sk.cluster_layer("nothing", model, viewer=viewer)
    points = next(ly for ly in viewer.layers if ly._type_string == "points")
    with pytest.raises(sk.SkelmaeError, match="no results"):
        sk.export_layer(points, viewer=viewer)
