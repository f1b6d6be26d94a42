"""The pipeline from the command line on real recordings: pretrain -> embed -> cluster ->
classify, each writing its files, and `skelmae demo` end to end with a real screenshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from napari_skelmae import load_tracks, read_results
from napari_skelmae.analysis.bouts import frames_to_bouts
from napari_skelmae.cli import main

from .conftest import data_path

pytestmark = pytest.mark.slow

TINY = ["--set=dim=32", "--set=depth=1", "--set=heads=2", "--set=decoder_dim=32",
        "--set=decoder_depth=1", "--set=decoder_heads=2"]


@pytest.fixture(scope="module")
def mouse_path():
    # one mouse, 4 keypoints, 2330 frames at 30 fps, with its video
    return data_path("dlc_openfield", "predictions",
                     "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5")


@pytest.fixture(scope="module")
def model_path(mouse_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "mouse.skelmae"
    assert main(["pretrain", str(mouse_path), "--out", str(out), "--max-steps", "30",
                 "--batch-size", "16", "--window-s", str(16 / 30), "--precision", "float32",
                 "--set=reference=window", *TINY]) == 0
    # --set takes window options as well as model options
    from napari_skelmae import load_model

    assert load_model(out).window.reference == "window"
    return out


def test_embed_and_cluster_write_results_tables(mouse_path, model_path, tmp_path, capsys):
    assert main(["embed", str(mouse_path), "--model", str(model_path),
                 "--out-dir", str(tmp_path)]) == 0
    table = read_results(tmp_path / "m3v1mp4.skelmae.parquet")
    tracks = load_tracks(mouse_path)
    assert len(table) == tracks.n_frames
    assert [c for c in table.columns if c.startswith("emb_")] == [f"emb_{i:03d}"
                                                                  for i in range(32)]
    clusterer = tmp_path / "clusters.skelmae"
    assert main(["cluster", str(mouse_path), "--model", str(model_path), "--n-clusters", "4",
                 "--out-dir", str(tmp_path), "--save-clusterer", str(clusterer),
                 "--score", "2:4"]) == 0
    out = capsys.readouterr().out
    assert "silhouette" in out and "wrote" in out
    fitted = read_results(tmp_path / "m3v1mp4.skelmae.parquet")["cluster"].to_numpy()
    assert set(np.unique(fitted)) <= {-1, 0, 1, 2, 3} and len(np.unique(fitted[fitted >= 0])) == 4
    # the saved clusterer applied again gives the same labels
    again = tmp_path / "again"
    again.mkdir()
    assert main(["cluster", str(mouse_path), "--model", str(model_path),
                 "--clusterer", str(clusterer), "--out-dir", str(again)]) == 0
    applied = read_results(again / "m3v1mp4.skelmae.parquet")["cluster"].to_numpy()
    np.testing.assert_array_equal(applied, fitted)


def test_classify_learns_labelled_bouts_and_writes_behaviour_files(mouse_path, model_path,
                                                                   tmp_path, capsys):
    """Labels from a rule on the real tracks (snout speed above / below its median, bouts of
    at least 10 frames): an honest, checkable stand-in for a human's "moving" / "still"."""
    tracks = load_tracks(mouse_path)
    snout = tracks.positions[:, 0, tracks.keypoint_names.index("snout")]
    speed = np.r_[0, np.linalg.norm(np.diff(snout, axis=0), axis=1)]
    smooth = pd.Series(speed).rolling(15, center=True, min_periods=1).mean().to_numpy()
    codes = (smooth > np.nanmedian(smooth)).astype(np.int64)[:, None]
    bouts = frames_to_bouts(codes, ["still", "moving"], tracks.frame_index,
                            tracks.individual_names)
    bouts = bouts[bouts.stop_frame - bouts.start_frame >= 9]
    labels = tmp_path / "labels.csv"
    bouts.to_csv(labels, index=False)
    assert main(["classify", str(mouse_path), "--model", str(model_path), "--labels",
                 str(labels), "--cv", "3", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "moving" in out and "f1" in out.lower()
    for suffix in (".skelmae.parquet", ".skelmae.csv", ".skelmae.boris.csv", ".skelmae.slp"):
        assert (tmp_path / f"m3v1mp4{suffix}").is_file(), suffix
    table = read_results(tmp_path / "m3v1mp4.skelmae.parquet")
    assert set(table["behaviour"].dropna().astype(str)) <= {"still", "moving"}
    assert {"p_still", "p_moving"} <= set(table.columns)


def test_cli_refuses_mismatched_labels_with_one_line(mouse_path, model_path, tmp_path,
                                                     capsys):
    assert main(["classify", str(mouse_path), str(mouse_path), "--model", str(model_path),
                 "--labels", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--labels" in err


@pytest.mark.gui
def test_demo_runs_end_to_end_with_a_screenshot(tmp_path):
    from napari_skelmae.cli.demo import run_demo

    files = run_demo(tmp_path, steps=20)
    for kind in ("model", "clusterer", "parquet", "csv", "slp", "boris", "ethogram",
                 "embedding map", "screenshot"):
        assert files[kind].is_file(), kind
    shot = np.asarray(Image.open(files["screenshot"]).convert("RGB")).astype(float)
    assert shot.std() > 10  # not blank
    # the clusters' colours are on screen: several distinct saturated colours
    flat = shot.reshape(-1, 3)
    saturated = flat[(flat.max(1) - flat.min(1)) > 80]
    assert len(np.unique((saturated // 32).astype(int), axis=0)) >= 3
    table = read_results(files["parquet"])
    assert (table["cluster"] >= 0).mean() > 0.9
