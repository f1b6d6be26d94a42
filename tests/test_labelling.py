"""Labelling behaviour bouts in napari (the Classify widget's "Label bouts" panel), training
Classify from them, and the embedding progress bar and Cancel of Embed & cluster; driven with
qtbot in a real viewer (run under Xvfb)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from .shared_fixtures import discover_plugins, one_thread, open_sample  # noqa: F401

pytestmark = pytest.mark.gui

PLUGIN = "napari-skelmae"


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    from napari_skelmae import sample_tracks
    from napari_skelmae.training import pretrain

    model = pretrain(sample_tracks(), "mamp", max_steps=10, batch_size=16, device="cpu",
                     window=dict(window_s=16 / 30, stride_s=8 / 30), precision="float32",
                     dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1,
                     decoder_heads=2)
    return model.save(tmp_path_factory.mktemp("model") / "tiny.skelmae")


def _bout(viewer, panel, behaviour, individual, first, last):
    """Label a bout with the panel's buttons, as a user scrubbing the video would."""
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    panel.behaviour.setCurrentText(behaviour)
    panel.individual.setCurrentText(individual)
    viewer.dims.set_point(0, first)
    QTest.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    viewer.dims.set_point(0, last)
    QTest.mouseClick(panel.end_button, Qt.MouseButton.LeftButton)


def _rows(bouts: pd.DataFrame) -> list[tuple]:
    return sorted(tuple(r) for r in bouts[["individual", "behaviour", "start_frame",
                                           "stop_frame"]].itertuples(index=False))


def _labels_per_point(points) -> list[str]:
    return points.features["labels"].astype(str).tolist()


def test_label_bouts_with_buttons_and_keys_then_save_and_load(make_napari_viewer, qtbot,
                                                              notifications, tmp_path,
                                                              monkeypatch):
    from napari.layers import Labels, Shapes
    from napari.utils.key_bindings import coerce_keybinding
    from qtpy.QtCore import Qt

    from napari_skelmae import layers_to_tracks
    from napari_skelmae.analysis.labels import load_labels
    from napari_skelmae.napari.views import EthogramView
    from napari_skelmae.napari.views.ethogram import category_columns
    from napari_skelmae.napari.widgets import ClassifyWidget
    from napari_skelmae.napari.widgets.labelling import END_KEY, START_KEY, _press_start
    from napari_skelmae.plots import category_colors

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    classify = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(classify)
    panel = classify.labelling
    assert [panel.individual.itemText(i) for i in range(panel.individual.count())] == [
        "track_0", "track_1", "all individuals"]

    # the shortcuts reach the panel whichever napari layer is active (none binds them)
    handler = viewer.window._qt_viewer._key_map_handler
    viewer.add_layer(Labels(np.zeros((4, 4), np.int32)))
    viewer.add_layer(Shapes())
    for layer in [*viewer.layers, None]:
        viewer.layers.selection.active = layer
        keymap = handler.active_keymap
        bound = keymap.get(coerce_keybinding(START_KEY))
        assert bound is not None and bound.__func__ is _press_start, (layer, bound)
        assert coerce_keybinding(END_KEY) in keymap
    viewer.layers.remove(viewer.layers[-1])
    viewer.layers.remove(viewer.layers[-1])
    viewer.layers.selection.active = points

    # a bout with the buttons (frames inclusive), a second one with the keyboard shortcuts
    assert not panel.isVisibleTo(classify)  # collapsed until used
    _bout(viewer, panel, "courtship", "track_0", 100, 180)
    assert panel.isVisibleTo(classify)
    panel.behaviour.setCurrentText("chasing")
    panel.individual.setCurrentText("track_1")
    canvas = viewer.window._qt_viewer.canvas.native
    viewer.dims.set_point(0, 300)
    qtbot.keyClick(canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert panel.pending_start == 300
    viewer.dims.set_point(0, 420)
    qtbot.keyClick(canvas, Qt.Key.Key_E, Qt.KeyboardModifier.ShiftModifier)
    want = [("track_0", "courtship", 100, 180), ("track_1", "chasing", 300, 420)]
    assert _rows(panel.bouts()) == want
    shown = [tuple(panel.table.item(r, c).text() for c in range(4))
             for r in range(panel.table.rowCount())]
    assert shown == [tuple(str(v) for v in w) for w in want]
    assert [panel.behaviour.itemText(i) for i in range(panel.behaviour.count())] == [
        "courtship", "chasing"]  # the names used are remembered

    # the points carry the labels (exactly the bouts' frames) and the ethogram draws them
    frames = np.rint(points.data[:, 0]).astype(int)
    who = points.features["individual"].astype(str).to_numpy()
    expected = np.full(len(frames), "none", object)
    expected[(who == "track_0") & (frames >= 100) & (frames <= 180)] = "courtship"
    expected[(who == "track_1") & (frames >= 300) & (frames <= 420)] = "chasing"
    assert _labels_per_point(points) == expected.tolist()
    assert "labels" in category_columns(points)
    ethogram = viewer.window.dock_widgets["Ethogram"]
    assert isinstance(ethogram, EthogramView)
    bouts = ethogram.artists.bouts
    names = ["chasing", "courtship"]
    drawn = sorted(zip([f"track_{i}" for i in bouts["individual"]],
                       [names[c] for c in bouts["code"]], bouts["start"].tolist(),
                       bouts["stop"].tolist(), strict=True))
    assert drawn == want

    # an overlapping bout is refused with a notification, and nothing changes
    notifications.clear()
    _bout(viewer, panel, "grooming", "track_0", 150, 200)
    assert any("overlapping" in m for m in notifications), notifications
    assert _rows(panel.bouts()) == want
    assert panel.pending_start == 150  # kept: change the behaviour or frames, press End again
    # End without a Start, and a frame outside the recording: notifications
    panel.pending_start = None
    notifications.clear()
    panel.end_bout()
    assert any("press Start" in m for m in notifications), notifications
    panel.pending_start = 1300
    with monkeypatch.context() as m:  # a video longer than its tracks: frame 1400 untracked
        m.setattr(panel, "current_frame", lambda: 1400)
        panel.end_bout()
    assert any("outside the recording" in m for m in notifications), notifications
    assert _rows(panel.bouts()) == want

    # all individuals at once; End before Start gives the same inclusive range
    _bout(viewer, panel, "resting", "all individuals", 700, 650)
    want += [("track_0", "resting", 650, 700), ("track_1", "resting", 650, 700)]
    assert _rows(panel.bouts()) == sorted(want)
    # delete the selected bout (track_1's resting)
    row = next(r for r in range(panel.table.rowCount())
               if panel.table.item(r, 0).text() == "track_1"
               and panel.table.item(r, 1).text() == "resting")
    panel.table.selectRow(row)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    want.remove(("track_1", "resting", 650, 700))
    assert _rows(panel.bouts()) == sorted(want)
    assert "resting" not in set(np.asarray(_labels_per_point(points))[who == "track_1"])

    # colour while labelling: the points take the palette colour of their label
    before = np.array(points.face_color, copy=True)
    panel.colour_points.setChecked(True)
    palette = category_colors(sorted({w[1] for w in want}))
    labels = np.asarray(_labels_per_point(points))
    for name, colour in palette.items():
        np.testing.assert_allclose(points.face_color[labels == name], np.tile(
            colour, ((labels == name).sum(), 1)), atol=1e-6)
    assert not np.allclose(points.face_color, before)
    panel.colour_points.setChecked(False)  # their own colours back
    np.testing.assert_array_equal(points.face_color, before)

    # save, and read back with the project's labels reader
    path = panel.save_bouts(tmp_path / "bouts")
    assert path == tmp_path / "bouts.csv" and path.exists()
    tracks = layers_to_tracks(points)
    back = load_labels(path, tracks=tracks)
    assert _rows(back) == sorted(want)
    assert back.attrs["format"] == "bouts"
    # load: into an empty table, and a second time (no duplicates)
    panel.table.selectAll()
    panel.delete_selected()
    assert panel.bouts().empty and set(_labels_per_point(points)) == {"none"}
    panel.load_bouts(path)
    panel.load_bouts(path)
    assert _rows(panel.bouts()) == sorted(want)
    # a file naming an individual the layer does not have: a notification, nothing added
    bad = tmp_path / "bad.csv"
    bad.write_text("individual,behaviour,start_frame,stop_frame\nfly9,walk,1,5\n")
    notifications.clear()
    assert panel.load_bouts(bad) is None
    assert any("fly9" in m for m in notifications), notifications
    assert _rows(panel.bouts()) == sorted(want)


def test_classify_trains_from_bouts_labelled_in_napari(make_napari_viewer, qtbot,
                                                       tiny_model_file, notifications):
    from qtpy.QtCore import Qt

    from napari_skelmae.analysis.classify import train_classifier
    from napari_skelmae.napari.widgets import ClassifyWidget
    from napari_skelmae.napari.widgets.classify import LABELLED

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    classify = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(classify)
    classify.model_file.setText(str(tiny_model_file))
    classify.labels_source.setCurrentText(LABELLED)
    assert classify.labelling.isVisibleTo(classify)
    classify.cv.setValue(2)
    # nothing labelled yet: a notification, no run
    qtbot.mouseClick(classify.run_button, Qt.MouseButton.LeftButton)
    assert classify.worker is None
    assert any("no bouts labelled" in m for m in notifications), notifications

    panel = classify.labelling
    for behaviour, who, first, last in (("courtship", "track_0", 40, 200),
                                        ("chasing", "track_0", 500, 640),
                                        ("courtship", "track_1", 800, 950),
                                        ("chasing", "track_1", 1100, 1250)):
        _bout(viewer, panel, behaviour, who, first, last)
    bouts = panel.bouts()
    assert len(bouts) == 4
    seen: list[tuple] = []
    classify.relay.progress.connect(lambda *a: seen.append(a))
    qtbot.mouseClick(classify.run_button, Qt.MouseButton.LeftButton)
    assert classify.worker is not None
    with qtbot.waitSignal(classify.worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: classify.run_button.isEnabled(), timeout=5_000)
    result = classify.result
    assert result is not None, notifications
    clf = result["classifier"]
    assert clf.names == ["chasing", "courtship"]
    assert result["codes"].shape == (1350, 2)
    assert set(np.unique(result["codes"])) <= {-1, 0, 1} and (result["codes"] >= 0).mean() > 0.9
    # the classifier is the one these bouts train (same embeddings, same recipe)
    direct = train_classifier(result["embeddings"], bouts, tracks=result["tracks"],
                              kind="linear", cv=2)
    codes, _ = direct.predict(result["embeddings"], result["tracks"].frame_index)
    np.testing.assert_array_equal(codes, result["codes"])
    assert set(points.features["behaviour"].astype(str)) <= {"chasing", "courtship", "none"}
    # it embedded with a real progress bar, which ended full
    embedding = [(d, t) for stage, d, t in seen if stage == "embedding"]
    assert embedding and embedding[-1][0] == embedding[-1][1]
    assert classify.progress_bar.maximum() == embedding[-1][1]
    assert classify.progress_bar.value() == classify.progress_bar.maximum()


def test_embed_cluster_progress_reaches_the_end_and_cancel_stops_it(
        make_napari_viewer, qtbot, tiny_model_file, monkeypatch):
    from qtpy.QtCore import Qt

    from napari_skelmae import layers_to_tracks
    from napari_skelmae.model import SkeletonModel, load_model
    from napari_skelmae.napari.widgets import EmbedClusterWidget

    viewer = make_napari_viewer()
    points = open_sample(viewer)
    embed = EmbedClusterWidget(viewer)
    viewer.window.add_dock_widget(embed)
    embed.model_file.setText(str(tiny_model_file))
    embed.n_clusters.setValue(3)
    embed.show_map.setChecked(False)
    seen: list[tuple] = []
    embed.relay.progress.connect(lambda *a: seen.append(a))

    # a full run: the bar counts every window the embedding makes, to the end
    expected: list[tuple] = []
    load_model(tiny_model_file).embed(layers_to_tracks(points),
                                      progress=lambda d, t: expected.append((d, t)))
    qtbot.mouseClick(embed.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(embed.worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: embed.run_button.isEnabled(), timeout=5_000)
    assert [(d, t) for s, d, t in seen if s == "embedding"] == expected and len(expected) >= 2
    total = expected[-1][1]
    assert expected[-1][0] == total
    assert embed.progress_bar.maximum() == total and embed.progress_bar.value() == total
    assert not embed.cancel_button.isEnabled()
    clusters = points.features["cluster"].astype(str).tolist()

    # Cancel while embedding: the worker stops before the next batch of windows. (The second
    # batch waits until Cancel was pressed, so the test does not race the embedding.)
    gate = threading.Event()
    batches = [0]
    original = SkeletonModel.sliding_windows

    def gated(self, *args, **kwargs):
        for batch in original(self, *args, **kwargs):
            batches[0] += 1
            if batches[0] == 2:
                assert gate.wait(30)
            yield batch

    monkeypatch.setattr(SkeletonModel, "sliding_windows", gated)
    seen.clear()
    qtbot.mouseClick(embed.run_button, Qt.MouseButton.LeftButton)
    worker = embed.worker
    assert embed.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: embed.progress_bar.value() > 0, timeout=30_000)
    assert embed.progress_bar.maximum() == total
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        qtbot.mouseClick(embed.cancel_button, Qt.MouseButton.LeftButton)
        gate.set()
    qtbot.waitUntil(lambda: embed.run_button.isEnabled(), timeout=5_000)
    assert "cancelled" in embed.status.text()
    done = [d for s, d, _ in seen if s == "embedding"]
    assert done == [expected[0][0]]  # one batch embedded, then stopped
    assert batches[0] == 2
    assert embed.progress_bar.value() == 0
    assert points.features["cluster"].astype(str).tolist() == clusters  # layer untouched
