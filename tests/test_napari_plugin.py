"""The plugin inside a real napari viewer (run under Xvfb): manifest, reader, sample data,
writer, widget, and screenshots that show the animals over the video."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_skelmae import load_tracks
from napari_skelmae.sample_data import sample_path

from .conftest import DATA
from .shared_fixtures import discover_plugins  # noqa: F401

pytestmark = pytest.mark.gui

PLUGIN = "napari-skelmae"


def test_npe2_validate_passes():
    res = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari_skelmae"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "valid" in (res.stdout + res.stderr).lower()


def test_top_level_manifest_is_the_packaged_one():
    top = Path(__file__).resolve().parents[1] / "napari.yaml"
    packaged = Path(__file__).resolve().parents[1] / "src/napari_skelmae/napari.yaml"
    assert top.read_text() == packaged.read_text()


def test_manifest_declares_reader_writer_widget_sample():
    import npe2

    mf = npe2.PluginManager.instance().get_manifest(PLUGIN)
    c = mf.contributions
    assert c.readers and c.writers and c.widgets and c.sample_data
    readers = {r.plugin_name for r in npe2.PluginManager.instance().iter_compatible_readers(
        [str(sample_path())])}
    assert PLUGIN in readers


def _layer_types(viewer):
    return {layer._type_string: layer for layer in viewer.layers}


@pytest.mark.parametrize(
    "rel",
    [
        "sleap_analysis_example/predictions.slp",
        "dlc_openfield/predictions/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5",
        "dlc_vame_mouse/cropped_video.csv",
    ],
)
def test_viewer_open_gives_points_skeleton_and_video(make_napari_viewer, rel):
    viewer = make_napari_viewer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = viewer.open(DATA / rel, plugin=PLUGIN)
    kinds = [layer._type_string for layer in layers]
    assert "points" in kinds and "image" in kinds
    tracks = load_tracks(DATA / rel)
    # a skeleton layer exactly when the file has a skeleton (dlc_openfield's config has none)
    assert ("vectors" in kinds or "shapes" in kinds) == (len(tracks.edges) > 0)
    points = next(layer for layer in layers if layer._type_string == "points")
    assert len(points.data) == int((~tracks.missing).sum())
    video = next(layer for layer in layers if layer._type_string == "image")
    assert video.rgb
    # video underneath the points
    assert viewer.layers.index(video) < viewer.layers.index(points)


def test_hovering_a_point_shows_individual_keypoint_and_confidence(make_napari_viewer):
    """What napari shows under the cursor (tooltip and status bar) for a point: its
    individual, keypoint and confidence; show_tracks switches the layer tooltip on."""
    import numpy as np

    from napari_skelmae.napari.console import show_tracks

    viewer = make_napari_viewer()
    assert not viewer.tooltip.visible  # napari's default
    tracks = load_tracks(DATA / "sleap_analysis_example" / "predictions.slp")
    points = next(layer for layer in show_tracks(tracks, viewer=viewer)
                  if layer._type_string == "points")
    assert viewer.tooltip.visible
    viewer.dims.set_point(0, 10)
    points.refresh()
    i = int(np.flatnonzero(points.data[:, 0] == 10)[5])
    text = points._get_tooltip_text(points.data[i], world=True)
    row = points.features.iloc[i]
    lines = text.splitlines()
    assert lines[:2] == [f"individual: {row['individual']}", f"keypoint: {row['keypoint']}"]
    name, value = lines[2].split(": ")  # napari rounds the score for display
    assert name == "confidence" and abs(float(value) - row["confidence"]) < 0.006
    frame = np.searchsorted(tracks.frame_index, 10)
    k = tracks.keypoint_names.index(row["keypoint"])
    ind = tracks.individual_names.index(row["individual"])
    assert np.isclose(row["confidence"], tracks.confidence[frame, ind, k])


def test_broken_file_through_napari_is_a_notification_not_a_crash(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    bad = tmp_path / "broken.slp"
    bad.write_bytes((DATA / "sleap_flies13/demo-flies13-preds.slp").read_bytes()[:30_000])
    viewer = make_napari_viewer()
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(str(n.message)))
    try:
        layers = viewer.open(bad, plugin=PLUGIN)
    finally:
        notification_manager.notification_ready.disconnect()
    assert layers == [] and len(viewer.layers) == 0
    assert any(str(bad) in m for m in seen), seen


def test_sample_data_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "flies")
    kinds = {layer._type_string for layer in viewer.layers}
    assert {"points", "image"} <= kinds
    assert viewer.dims.range[0].stop >= 1349


def _canvas(viewer, frame):
    viewer.dims.set_point(0, frame)
    return np.asarray(viewer.screenshot(canvas_only=True, flash=False))


def test_screenshot_shows_points_over_video_and_changes_with_frame(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(sample_path(), plugin=PLUGIN)
    layers = _layer_types(viewer)
    a = _canvas(viewer, 100)
    b = _canvas(viewer, 900)
    assert a.ndim == 3 and a.shape[-1] in (3, 4)
    rgb = a[..., :3].astype(int)
    assert rgb.std() > 5, "screenshot is blank"
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.5, "frame change did not redraw"
    # the points are drawn: hiding them changes the picture at the same frame
    layers["points"].visible = False
    c = _canvas(viewer, 900)
    assert np.abs(b.astype(int) - c.astype(int)).sum() > 0
    layers["points"].visible = True
    # the video is drawn: hiding it changes the picture too
    layers["image"].visible = False
    d = _canvas(viewer, 900)
    assert np.abs(b.astype(int) - d.astype(int)).mean() > 1


def test_writer_round_trips_through_napari(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(sample_path(), plugin=PLUGIN)
    points = _layer_types(viewer)["points"]
    out = tmp_path / "flies.nc"
    written = points.save(str(out), plugin=PLUGIN)
    assert written and out.exists()
    back = load_tracks(out, video=False)
    orig = load_tracks(sample_path(), video=False)
    np.testing.assert_array_equal(back.positions, orig.positions)
    assert back.keypoint_names == orig.keypoint_names


def test_open_tracks_widget(make_napari_viewer, qtbot):
    from napari_skelmae.napari.widgets import open_tracks_widget

    viewer = make_napari_viewer()
    widget = open_tracks_widget()
    viewer.window.add_dock_widget(widget)
    widget.path.value = DATA / "sleap_centered_pair/centered_pair_predictions.slp"
    widget.merge_fragments.value = True
    worker = widget()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(viewer.layers) >= 2, timeout=10_000)
    points = _layer_types(viewer)["points"]
    # 27 fragmented ids, at most 5 present in one frame (frame 1099) -> 5 individuals
    assert points.features["individual"].nunique() == 5
