"""The dock widgets driven with qtbot in a real viewer (run under Xvfb): pretraining starts,
shows progress, cancels and finishes; bad input is a notification; the ethogram and the
embedding map follow the frame slider and move it when clicked."""

from __future__ import annotations

import numpy as np
import pytest

from napari_skelmae.sample_data import sample_path

from .shared_fixtures import discover_plugins, one_thread, open_sample  # noqa: F401

pytestmark = pytest.mark.gui

PLUGIN = "napari-skelmae"
#: a tiny MAMP so that a run takes a second or two on two busy cores
TINY = ("dim=32 depth=1 heads=2 decoder_dim=32 decoder_depth=1 decoder_heads=2 "
        "precision=float32 log_every=2")


def _click(qtbot, canvas, x_px, y_px):
    """A real left click on a matplotlib Qt canvas at matplotlib display coordinates."""
    from qtpy.QtCore import QPoint, Qt

    ratio = canvas.device_pixel_ratio
    height = canvas.figure.bbox.height
    pos = QPoint(int(round(x_px / ratio)), int(round((height - y_px) / ratio)))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=pos)
    return pos.x() * ratio, height - pos.y() * ratio  # where matplotlib saw the click


# ------------------------------------------------------------------------------ pretrain
def _tiny_settings(widget, steps, output):
    widget.method.setCurrentText("mamp")
    widget.length_unit.setCurrentText("steps")
    widget.length.setValue(steps)
    widget.batch_size.setValue(16)
    widget.window_s.setValue(16 / 30)  # 16 model frames at 30 Hz
    widget.device.setCurrentText("cpu")
    widget.output.setText(str(output))
    widget.options.setText(TINY)


def test_pretrain_starts_shows_progress_cancels_and_finishes(make_napari_viewer, qtbot,
                                                             tmp_path):
    from qtpy.QtCore import Qt

    from napari_skelmae.model import load_model
    from napari_skelmae.napari.widgets import PretrainWidget

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    widget = PretrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    from napari_skelmae.napari.widgets._common import session

    assert widget.checked_sources() == [("layer", points.name)]
    out = tmp_path / "flies.skelmae"

    # a long run, cancelled once it shows progress
    _tiny_settings(widget, 100_000, out)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    worker = widget.worker
    assert worker is not None and not widget.start_button.isEnabled()
    qtbot.waitUntil(lambda: len(widget.reports) >= 3, timeout=60_000)
    first = widget.progress_bar.value()
    qtbot.waitUntil(lambda: widget.progress_bar.value() > first, timeout=30_000)
    assert widget.progress_bar.maximum() == widget.reports[-1].total_steps
    assert "windows/s" in widget.eta_label.text() and "ETA" in widget.eta_label.text()
    qtbot.waitUntil(lambda: widget.curve_lines.get("train") is not None
                    and len(widget.curve_lines["train"].get_xdata()) >= 2, timeout=10_000)
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.start_button.isEnabled(), timeout=5_000)
    assert widget.model is not None and widget.model.history["cancelled"]
    assert widget.model.history["steps"] < widget.reports[-1].total_steps
    assert not out.exists(), "a cancelled run must not overwrite the model file"
    assert "cancelled" in widget.status.text()

    # a short run that finishes and writes the model
    _tiny_settings(widget, 20, out)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(widget.worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: widget.start_button.isEnabled(), timeout=5_000)
    history = widget.model.history
    assert not history["cancelled"] and history["steps"] == 20
    assert widget.progress_bar.value() == widget.progress_bar.maximum() == 20
    assert out.exists()
    loaded = load_model(out)
    assert loaded.method == "mamp" and loaded.history["steps"] == 20
    assert session(viewer).model is widget.model  # what Embed & cluster will use
    # the final curve: the live train losses and the validation losses at their steps
    assert len(widget.curve_lines["train"].get_xdata()) == 10  # log_every=2
    val_steps = [e["step"] for e in history["epochs"] if e["val_loss"] is not None]
    np.testing.assert_array_equal(widget.curve_lines["val"].get_xdata(), val_steps)


def test_pretrain_without_tracks_is_a_notification(make_napari_viewer, qtbot, notifications):
    from qtpy.QtCore import Qt

    from napari_skelmae.napari.widgets import PretrainWidget

    viewer = make_napari_viewer()
    widget = PretrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None and widget.start_button.isEnabled()
    assert any("no tracks" in m for m in notifications), notifications


def test_pretrain_error_in_the_worker_is_a_notification(make_napari_viewer, qtbot,
                                                        notifications, tmp_path):
    from qtpy.QtCore import Qt

    from napari_skelmae.napari.widgets import PretrainWidget

    viewer = make_napari_viewer()
    open_sample(viewer)
    widget = PretrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    _tiny_settings(widget, 5, tmp_path / "m.skelmae")
    widget.options.setText(TINY + " no_such_option=3")  # found by pretrain, in the worker
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(widget.worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: widget.start_button.isEnabled(), timeout=5_000)
    assert any("no_such_option" in m for m in notifications), notifications
    assert widget.model is None and not (tmp_path / "m.skelmae").exists()
    # an option that belongs in a field is refused before anything starts
    widget.options.setText("lr=0.1")
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None
    assert any("own field" in m for m in notifications), notifications


# --------------------------------------------------------------------------------- views
def _blocks(frame_index, n_ind, length=150):
    """Three behaviours in blocks of ``length`` frames, shifted per individual."""
    codes = np.stack([((frame_index + 50 * i) // length) % 4 - 1 for i in range(n_ind)], 1)
    return codes.astype(np.int64)  # -1, 0, 1, 2: unlabelled every fourth block


def test_ethogram_marks_current_frame_and_a_click_moves_the_viewer(make_napari_viewer,
                                                                   qtbot):
    from napari_skelmae.napari.views import EthogramView

    viewer = make_napari_viewer(show=True)
    open_sample(viewer)
    view = EthogramView(viewer)
    viewer.window.add_dock_widget(view, area="bottom")
    frame_index = np.arange(1350)
    codes = _blocks(frame_index, 2)
    view.set_data(codes, ["walk", "groom", "rest"], frame_index, ["fly0", "fly1"])
    qtbot.waitUntil(lambda: view.plot._background is not None, timeout=10_000)

    viewer.dims.set_point(0, 400)
    line = view.artists.current_line
    assert line.get_visible() and line.get_xdata()[0] == 400
    # the marker is drawn: the column of pixels at frame 400 is black in the row's middle
    ax = view.artists.ax
    px, py = ax.transData.transform((400, 0.0))
    buf = np.asarray(view.plot.canvas.buffer_rgba())
    assert buf[int(buf.shape[0] - py), int(round(px)) - 1: int(round(px)) + 2, :3].min() < 40

    # a click in the middle of one of fly1's bouts goes to the bout's first frame
    bouts = view.artists.bouts
    k = int(np.flatnonzero((bouts["individual"] == 1) & (bouts["start"] >= 500))[0])
    start, stop = int(bouts["start"][k]), int(bouts["stop"][k])
    assert stop - start > 100 and start != 400
    _click(qtbot, view.plot.canvas, *ax.transData.transform(((start + stop) / 2, 1.0)))
    assert viewer.dims.point[0] == start
    assert view.artists.current_line.get_xdata()[0] == start
    # a click between bouts goes to the frame under the cursor
    gap = int(np.flatnonzero(codes[:, 0] == -1)[75])
    assert view.artists.bout_at(gap, 0) is None
    _click(qtbot, view.plot.canvas, *ax.transData.transform((gap, 0.0)))
    assert abs(viewer.dims.point[0] - gap) <= 3


def test_ethogram_from_a_points_layer_feature(make_napari_viewer, qtbot):
    from napari_skelmae.napari.views import EthogramView

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    features = points.features.copy()
    frames = np.rint(points.data[:, 0]).astype(int)
    features["behaviour"] = np.where(frames < 500, "court", "chase")
    points.features = features
    view = EthogramView(viewer)
    viewer.window.add_dock_widget(view)
    assert view.layer_box.currentText() == points.name
    assert view.column_box.currentText() == "behaviour"
    view.show_button.click()
    # expected from the tracks themselves, not from the layer: a fly is labelled in the
    # frames where it has any keypoint
    from napari_skelmae import load_tracks
    from napari_skelmae.analysis.bouts import frames_to_bouts

    tracks = load_tracks(sample_path(), video=False)
    names = ["chase", "court"]  # sorted
    expected = np.repeat(np.where(tracks.frame_index[:, None] < 500, 1, 0),
                         tracks.n_individuals, axis=1)
    expected[tracks.missing.all(axis=2)] = -1
    want = frames_to_bouts(expected, names, tracks.frame_index, tracks.individual_names)
    bouts = view.artists.bouts
    got = sorted(zip([tracks.individual_names[i] for i in bouts["individual"]],
                     [names[c] for c in bouts["code"]], bouts["start"].tolist(),
                     bouts["stop"].tolist(), strict=True))
    assert got == sorted(want.itertuples(index=False, name=None)) and len(got) >= 4
    assert [t.get_text() for t in view.artists.legend.get_texts()] == names


def test_embedding_map_marks_current_frame_and_a_click_moves_the_viewer(make_napari_viewer,
                                                                        qtbot):
    from napari_skelmae.napari.views import EmbeddingMapView

    viewer = make_napari_viewer(show=True)
    open_sample(viewer)
    view = EmbeddingMapView(viewer)
    viewer.window.add_dock_widget(view, area="right")
    rng = np.random.default_rng(0)
    frame_index = np.arange(0, 1350, 5)
    emb = rng.normal(size=(len(frame_index), 2, 8)).astype(np.float32)
    emb[..., 0] += np.arange(len(frame_index))[:, None] / 20  # time as the main direction
    labels = _blocks(frame_index, 2)
    view.set_embeddings(emb, frame_index, labels, ["walk", "groom", "rest"],
                        individual_names=["fly0", "fly1"])
    qtbot.waitUntil(lambda: view.plot._background is not None, timeout=10_000)
    assert view.artists.ax.get_xlabel() == "PC 1"

    viewer.dims.set_point(0, 600)
    rows = np.flatnonzero(view.frames == 600)
    assert len(rows) == 2  # both flies of frame 600
    np.testing.assert_allclose(np.c_[view.artists.current_marker.get_data()],
                               view.artists.xy[rows])

    # click on a point far from the current ones: the viewer jumps to its frame
    target = int(np.flatnonzero(view.frames == 1000)[1])
    ax = view.artists.ax
    clicked = _click(qtbot, view.plot.canvas, *ax.transData.transform(view.artists.xy[target]))
    hit = view.artists.point_at(*clicked)
    assert viewer.dims.point[0] == view.frames[hit]
    assert np.abs(view.artists.xy[hit] - view.artists.xy[target]).max() < 0.5
    assert len(np.flatnonzero(view.frames == viewer.dims.point[0])) == 2
    np.testing.assert_allclose(
        np.c_[view.artists.current_marker.get_data()],
        view.artists.xy[view.frames == viewer.dims.point[0]])


# ------------------------------------------------------------- embed, classify, export
@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    from napari_skelmae import sample_tracks
    from napari_skelmae.training import pretrain

    model = pretrain(sample_tracks(), "mamp", max_steps=20, batch_size=16, device="cpu",
                     window=dict(window_s=16 / 30, stride_s=8 / 30), precision="float32",
                     dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1,
                     decoder_heads=2)
    return model.save(tmp_path_factory.mktemp("model") / "tiny.skelmae")


def _run(qtbot, widget):
    from qtpy.QtCore import Qt

    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.worker is not None
    with qtbot.waitSignal(widget.worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=5_000)


def _speed_labels(points):
    """'moving' / 'still' per point from its animal's centroid speed (median split), as a
    layer feature: labels with a real relation to the movement."""
    from napari_skelmae import layers_to_tracks

    tracks = layers_to_tracks(points)
    centre = np.nanmean(tracks.positions, axis=2)  # (frames, individuals, 2)
    speed = np.linalg.norm(np.diff(centre, axis=0, prepend=centre[:1]), axis=2)
    moving = speed > np.nanmedian(speed)
    row_of = {int(f): r for r, f in enumerate(tracks.frame_index)}
    rows = np.array([row_of[int(f)] for f in np.rint(points.data[:, 0])])
    ind = points.features["individual"].cat.codes.to_numpy()
    features = points.features.copy()
    features["activity"] = np.where(moving[rows, ind], "moving", "still")
    points.features = features


def test_embed_cluster_colours_points_then_classify_and_export(make_napari_viewer, qtbot,
                                                               tiny_model_file, tmp_path):
    from napari_skelmae.export import read_results
    from napari_skelmae.napari.views import EmbeddingMapView, EthogramView
    from napari_skelmae.napari.widgets import ClassifyWidget, EmbedClusterWidget, ExportWidget
    from napari_skelmae.plots import category_colors
    from napari_skelmae.results import results_from_table

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    before = points.face_color.copy()

    # embed & cluster: the points take their cluster's palette colour
    embed = EmbedClusterWidget(viewer)
    viewer.window.add_dock_widget(embed)
    embed.model_file.setText(str(tiny_model_file))
    embed.n_clusters.setValue(4)
    embed.map_method.setCurrentText("pca")
    embed.save_clusterer.setText(str(tmp_path / "flies.clusterer"))
    _run(qtbot, embed)
    clusters, names = embed.result["labels"], embed.result["names"]
    assert embed.result["saved"] is not None and embed.result["saved"].is_file()
    assert names == ["0", "1", "2", "3"]
    assert not np.allclose(points.face_color, before)
    palette = category_colors(names)
    feature = points.features["cluster"].astype(str).to_numpy()
    for name in names:
        assert (feature == name).any()
        assert np.allclose(points.face_color[feature == name], palette[name], atol=1e-6)
    ethogram = viewer.window.dock_widgets["Ethogram"]
    assert isinstance(ethogram, EthogramView)
    assert set(ethogram.artists.bouts["code"].tolist()) == {0, 1, 2, 3}
    assert ethogram.column_box.currentText() == "cluster"  # the boxes say what is shown
    emap = viewer.window.dock_widgets["Embedding map"]
    assert isinstance(emap, EmbeddingMapView) and emap.artists.ax.get_xlabel() == "PC 1"
    assert len(emap.frames) == clusters.size
    # the saved clusterer applied instead of a new fit: the same clusters, no new file
    embed.clusterer_file.setText(str(embed.result["saved"]))
    assert not embed.n_clusters.isEnabled() and not embed.save_clusterer.isEnabled()
    _run(qtbot, embed)
    np.testing.assert_array_equal(embed.result["labels"], clusters)
    assert embed.result["saved"] is None
    embed.clusterer_file.setText("")

    # classify from labels in a layer feature: predictions on the points, F1 in the table
    _speed_labels(points)
    classify = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(classify)
    classify.labels_source.setCurrentText("feature: activity")
    assert classify.labels_source.currentText() == "feature: activity"
    classify.cv.setValue(3)
    _run(qtbot, classify)
    clf = classify.result["classifier"]
    assert sorted(clf.names) == ["moving", "still"]
    report = clf.cv_report.set_index("behaviour")
    shown = {classify.table.item(r, 0).text(): classify.table.item(r, 1).text()
             for r in range(classify.table.rowCount())}
    assert shown == {n: f"{report.loc[n, 'f1']:.2f}" for n in clf.names}
    assert "macro F1" in classify.status.text()
    assert set(points.features["behaviour"].astype(str)) <= {"moving", "still", "none"}
    assert set(ethogram.artists.bouts["code"].tolist()) <= {0, 1}  # now the behaviours
    assert ethogram.column_box.currentText() == "behaviour"
    assert ethogram.layer_box.currentText() == points.name

    # export: the files hold the clusters and behaviours the layer shows
    export = ExportWidget(viewer)
    viewer.window.add_dock_widget(export)
    export.folder.setText(str(tmp_path))
    _run(qtbot, export)
    assert {"parquet", "csv"} <= set(export.written)
    assert export.progress_bar.value() == export.progress_bar.maximum()  # done, not reset
    assert all(p.exists() and p.parent == tmp_path for p in export.written.values())
    tracks = embed.result["tracks"]
    back = results_from_table(read_results(export.written["parquet"]), tracks)
    np.testing.assert_array_equal(back.clusters, clusters)
    np.testing.assert_array_equal(back.behaviours, classify.result["codes"])


def test_analysis_widgets_without_model_or_results_notify(make_napari_viewer, qtbot,
                                                          notifications):
    from qtpy.QtCore import Qt

    from napari_skelmae.napari.widgets import ClassifyWidget, EmbedClusterWidget, ExportWidget

    viewer = make_napari_viewer()
    open_sample(viewer)
    for cls, needle in ((EmbedClusterWidget, "no model"), (ExportWidget, "nothing to export"),
                        (ClassifyWidget, "labels file")):
        widget = cls(viewer)
        viewer.window.add_dock_widget(widget)
        qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
        assert widget.worker is None and widget.run_button.isEnabled()
        assert any(needle in m for m in notifications), (needle, notifications)


def test_every_manifest_widget_opens_through_napari(make_napari_viewer, qtbot,
                                                    tiny_model_file):
    import npe2

    from napari_skelmae.napari.views import EmbeddingMapView, EthogramView
    from napari_skelmae.napari.widgets import (
        ClassifyWidget,
        EmbedClusterWidget,
        ExportWidget,
        PretrainWidget,
    )

    expected = {"Pretrain": PretrainWidget, "Embed & cluster": EmbedClusterWidget,
                "Classify": ClassifyWidget, "Export": ExportWidget,
                "Ethogram": EthogramView, "Embedding map": EmbeddingMapView}
    names = [w.display_name for w in
             npe2.PluginManager.instance().get_manifest(PLUGIN).contributions.widgets]
    assert set(expected) | {"Open tracks"} == set(names)
    from napari_skelmae.napari.widgets._common import session

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    opened = {}
    for name, cls in expected.items():
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        assert isinstance(widget, cls) and widget.viewer == viewer  # the viewer was injected
        opened[name] = widget
    # napari hands each plugin widget its own proxy of the viewer: they still share one
    # session, and results kept for a layer reached through one proxy are found through another
    state = session(opened["Pretrain"].viewer)
    assert session(opened["Classify"].viewer) is state is session(viewer)
    from napari_skelmae.napari.widgets._common import LayerResults

    state.set_results(opened["Export"].layer_box.layer(), LayerResults(tracks=None))
    import gc

    gc.collect()
    assert state.results(points) is not None
    # a run through the proxies colours the points and fills the views opened from the menu
    embed = opened["Embed & cluster"]
    assert embed.layer_box.currentText() == points.name
    embed.model_file.setText(str(tiny_model_file))
    embed.n_clusters.setValue(3)
    _run(qtbot, embed)
    assert set(points.features["cluster"].astype(str)) <= {"0", "1", "2", "none"}
    ethogram = opened["Ethogram"]
    assert len(ethogram.artists.bouts["start"]) > 0
    assert len(opened["Embedding map"].frames) == 1350 * 2
    # the views follow the real viewer's slider through their proxy
    viewer.dims.set_point(0, 321)
    assert ethogram.artists.current_line.get_xdata()[0] == 321
