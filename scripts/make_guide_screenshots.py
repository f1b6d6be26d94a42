"""Make every screenshot of docs/user-guide.md from the real napari window and dock widgets.

Run from anywhere, under a (virtual) display:

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python scripts/make_guide_screenshots.py

It opens the bundled two-fly sample with the Open tracks widget, pretrains a small MAMP
model in the Pretrain widget (shot while the loss curve grows and when it is done), embeds
and clusters the frames (points coloured by cluster, ethogram, embedding map), labels a few
bouts in the Classify widget's panel, trains the classifier (the F1 table), clicks a bout in
the ethogram, exports the files and runs a few lines in napari's console. Each step is a
button press or a field filled in, as a user would; the script checks that the step did what
the guide says before shooting it.

Writes docs/images/guide-<step>.png (quantised to 256 colours, so each stays near 110 kB)
and its working files (model, bouts, exports) under out/guide/. About 6 minutes on a shared
2-core CPU, most of it the 150 pretraining steps (--steps). Rerun it after the widgets
change.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "napari-skelmae"
#: the frame shown (both flies in view, the male's wing extended: courtship under way)
FRAME = 905
WINDOW_SIZE = (1440, 1040)
#: bouts labelled in the labelling panel: (individual, behaviour, first frame, last frame).
#: Picked with a rule on the wing angle (a wing more than 45 degrees from the body axis:
#: "wing extension"; both under 20 degrees: "wings folded"), standing in for a person's eye.
#: track_0 (the male) extends his wings; track_1 never does, so she only has folded bouts.
BOUTS = (("track_0", "wing extension", 481, 511), ("track_0", "wings folded", 336, 360),
         ("track_0", "wing extension", 882, 895), ("track_0", "wings folded", 538, 576),
         ("track_0", "wing extension", 922, 1016), ("track_0", "wings folded", 616, 664),
         ("track_0", "wings folded", 1077, 1120), ("track_1", "wings folded", 100, 160),
         ("track_1", "wings folded", 600, 650), ("track_1", "wings folded", 1100, 1150))
#: what the script writes in its working folder (removed at the start of a run)
WORK_FILES = ("flies-mamp.skelmae", "flies-bouts.csv", "export", "console")
#: lines typed into napari's console for its screenshot (they run there, on this script's
#: viewer); {work} is the working folder, relative to the repository
CONSOLE_LINES = (
    "import napari_skelmae as sk",
    "points = viewer.layers['demo-flies13-preds points']",
    "result = sk.cluster_layer(points, n_clusters=6, min_bout_frames=5)",
    "result['clusterer']",
    "bouts = sk.load_labels('{work}/flies-bouts.csv')",
    "clf = sk.classify_layer(points, bouts, cv=3)",
    "clf.cv_report[['behaviour', 'f1', 'chance_f1', 'bouts']].round(2)",
    "files = sk.export_layer(points, '{work}/console')",
    "[p.name for p in files.values()]",
)


# ------------------------------------------------------------------------------ helpers
def pump(seconds: float = 0.0) -> None:
    """Let Qt deliver signals and draw (queued worker results, matplotlib redraws)."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while True:
        QApplication.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.02)


def wait_until(condition, timeout: float, what: str) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"make_guide_screenshots: timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for_worker(widget, timeout: float, what: str) -> None:
    wait_until(lambda: widget.worker is None, timeout, what)
    pump(0.5)


def say(text: str) -> None:
    print(f"[guide] {text}", flush=True)


class Shooter:
    """Screenshots of the whole window, saved small."""

    def __init__(self, viewer, folder: Path, colours: int):
        self.viewer, self.folder, self.colours = viewer, folder, colours
        self.written: list[Path] = []

    def __call__(self, step: str) -> Path:
        from PIL import Image

        dismiss_notifications()
        pump(0.6)  # redraw timers of the plots (250 ms) and the canvas
        picture = self.viewer.screenshot(canvas_only=False, flash=False)
        image = Image.fromarray(np.asarray(picture)[..., :3])
        if self.colours:
            image = image.quantize(colors=self.colours, method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE)
        path = self.folder / f"guide-{step}.png"
        image.save(path, format="PNG", optimize=True)
        self.written.append(path)
        say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
            f"({image.width}x{image.height}, {path.stat().st_size / 1024:.0f} kB)")
        return path


def dismiss_notifications() -> None:
    """Close napari's notification pop-ups (the widgets' status lines say the same)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    for widget in QApplication.allWidgets():
        if isinstance(widget, NapariQtNotification) and widget.isVisible():
            widget.close()
    pump(0.1)


def size_docks(viewer, sizes: dict[str, int], vertical: bool) -> None:
    """Resize docks (by name prefix) to these heights (``vertical``) or widths, in pixels."""
    from qtpy.QtCore import Qt

    docks = viewer.window._wrapped_dock_widgets
    chosen = [(d, px) for name, d in docks.items() for prefix, px in sizes.items()
              if name.startswith(prefix)]
    orientation = Qt.Orientation.Vertical if vertical else Qt.Orientation.Horizontal
    viewer.window._qt_window.resizeDocks([d for d, _ in chosen], [px for _, px in chosen],
                                         orientation)
    pump(0.3)


def dock(viewer, name: str):
    """Dock one of the plugin's widgets as a user does (Plugins > napari-skelmae > name)."""
    dock_widget, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return dock_widget, widget


def only_docks(viewer, *keep: str) -> None:
    """Show only the docks whose names start with ``keep`` (the ones a step is about)."""
    for name, dock_widget in list(viewer.window._wrapped_dock_widgets.items()):
        dock_widget.setVisible(name.startswith(keep))
    pump(0.2)
    viewer.window.resize(*WINDOW_SIZE)  # docks shown may have grown the window
    pump(0.2)


def view_frame(viewer, tracks, frame: int) -> None:
    from napari_skelmae.cli.tracks import zoom_to_animals

    viewer.dims.set_point(0, frame)
    pump(0.3)
    zoom_to_animals(viewer, tracks, frame)


def click_canvas(canvas, x_data: float, y_data: float, ax) -> None:
    """A real left click on a matplotlib Qt canvas at data coordinates of ``ax``."""
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    x_px, y_px = ax.transData.transform((x_data, y_data))
    ratio = canvas.device_pixel_ratio
    pos = QPoint(int(round(x_px / ratio)), int(round((canvas.figure.bbox.height - y_px) / ratio)))
    QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    pump(0.3)


# ------------------------------------------------------------------------------ the steps
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(ROOT / "docs" / "images"),
                        help="folder for guide-*.png (default docs/images)")
    parser.add_argument("--work", default=str(ROOT / "out" / "guide"),
                        help="folder for the model and exported files (default out/guide)")
    parser.add_argument("--steps", type=int, default=150, help="pretraining steps (150)")
    parser.add_argument("--colours", type=int, default=256,
                        help="quantise each PNG to this many colours (0: full colour)")
    args = parser.parse_args(argv)

    import napari
    import npe2

    import napari_skelmae as sk
    from napari_skelmae.napari.views import EmbeddingMapView, EthogramView
    from napari_skelmae.napari.widgets._common import session
    from napari_skelmae.napari.widgets._views import _docked
    from napari_skelmae.sample_data import sample_path

    images, work = Path(args.images).resolve(), Path(args.work).resolve()
    os.chdir(ROOT)  # fields and console lines show paths relative to the repository
    shown_work = work.relative_to(ROOT) if work.is_relative_to(ROOT) else work
    images.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    for made in WORK_FILES:  # only what an earlier run made; nothing else in the folder
        path = work / made
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    npe2.PluginManager.instance().discover()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    started = time.perf_counter()

    viewer = napari.Viewer(title="napari-skelmae", show=True)
    viewer.window.resize(*WINDOW_SIZE)
    shoot = Shooter(viewer, images, args.colours)
    tracks = sk.sample_tracks()

    # 1. open: Plugins > napari-skelmae > Open tracks, choose the file, Open ----------------
    _, open_widget = dock(viewer, "Open tracks")
    open_widget.path.value = sample_path()
    open_widget.call_button.native.click()
    wait_until(lambda: any(ly._type_string == "points" for ly in viewer.layers), 60,
               "the tracks to open")
    layer_types = [ly._type_string for ly in viewer.layers]
    assert layer_types == ["image", "vectors", "points"], layer_types
    points = next(ly for ly in viewer.layers if ly._type_string == "points")
    view_frame(viewer, tracks, FRAME)
    shoot("open")

    # 2. pretrain: a small MAMP, shot while it runs and when it is done ---------------------
    dock(viewer, "Pretrain")
    pre = _docked_widget(viewer, "Pretrain")
    only_docks(viewer, "Pretrain")
    pre.method.setCurrentText("mamp")
    pre.preset.setCurrentText("small")
    pre.length_unit.setCurrentText("steps")
    pre.length.setValue(args.steps)
    pre.batch_size.setValue(32)
    pre.device.setCurrentText("auto")
    pre.output.setText(str(shown_work / "flies-mamp.skelmae"))
    pre.options.setText("reference=frame seed=0")
    view_frame(viewer, tracks, FRAME)
    pre.start_button.click()
    assert pre.worker is not None, pre.status.text()
    say(f"pretraining {args.steps} steps of a small MAMP…")
    wait_until(lambda: pre.reports and pre.reports[-1].step >= args.steps * 0.4, 900,
               "the pretraining to get going")
    shoot("pretrain-running")
    wait_for_worker(pre, 1800, "the pretraining to finish")
    history = pre.model.history
    assert not history["cancelled"] and history["steps"] == args.steps, pre.status.text()
    assert (work / "flies-mamp.skelmae").is_file(), pre.status.text()
    say(pre.status.text())
    shoot("pretrain")

    # 3. embed and cluster: colours, ethogram, embedding map --------------------------------
    dock(viewer, "Embed & cluster")
    emb = _docked_widget(viewer, "Embed & cluster")
    only_docks(viewer, "Embed & cluster")
    emb.method.setCurrentText("kmeans")
    emb.n_clusters.setValue(6)
    emb.min_bout.setValue(5)
    emb.map_method.setCurrentText("auto")
    emb.run_button.click()
    wait_for_worker(emb, 600, "embedding and clustering")
    assert emb.result is not None, emb.status.text()
    assert "cluster" in points.features
    say(emb.status.text())
    ethogram, emap = _docked(viewer, EthogramView), _docked(viewer, EmbeddingMapView)
    assert ethogram is not None and emap is not None
    only_docks(viewer, "Embed & cluster", "Ethogram", "Embedding map")
    size_docks(viewer, {"Ethogram": 220}, vertical=True)
    size_docks(viewer, {"Embed & cluster": 250, "Embedding map": 560}, vertical=True)
    check_views_jump(viewer, ethogram, emap)
    view_frame(viewer, tracks, FRAME)
    shoot("cluster")

    # 4. label a few bouts in the Classify widget's panel -----------------------------------
    dock(viewer, "Classify")
    cls = _docked_widget(viewer, "Classify")
    only_docks(viewer, "Classify", "Ethogram")
    size_docks(viewer, {"Classify": 470}, vertical=False)
    cls.labelling_toggle.setChecked(True)
    panel = cls.labelling
    for individual, behaviour, first, last in BOUTS:
        panel.individual.setCurrentText(individual)
        panel.behaviour.setCurrentText(behaviour)
        viewer.dims.set_point(0, first)
        pump(0.05)
        panel.start_button.click()
        viewer.dims.set_point(0, last)
        pump(0.05)
        panel.end_button.click()
    assert len(panel.bouts()) == len(BOUTS), panel.status.text()
    assert panel.save_bouts(shown_work / "flies-bouts.csv") is not None
    view_frame(viewer, tracks, BOUTS[4][2] + 20)
    shoot("label")

    # 5. classify: train on the labelled bouts, the per-class F1 table ----------------------
    cls.labels_source.setCurrentText("bouts labelled here")
    cls.kind.setCurrentText("linear")
    cls.cv.setValue(5)
    cls.labelling_toggle.setChecked(False)
    cls.run_button.click()
    wait_for_worker(cls, 600, "the classifier")
    assert cls.result is not None and cls.table.rowCount() == 2, cls.status.text()
    say(cls.status.text())
    view_frame(viewer, tracks, FRAME)
    shoot("classify")

    # 6. colour: the ethogram shows any label column; a click on a bout jumps to it -------
    ethogram.layer_box.setCurrentText(points.name)
    ethogram._refresh_columns()
    ethogram.column_box.setCurrentText("behaviour")
    ethogram.show_button.click()
    only_docks(viewer, "Ethogram", "Embedding map")
    size_docks(viewer, {"Ethogram": 250}, vertical=True)
    pump(0.5)
    bouts = ethogram.artists.bouts
    extension = list(cls.result["classifier"].names).index("wing extension")
    long_ones = np.flatnonzero((bouts["code"] == extension) & (bouts["individual"] == 0)
                               & (bouts["stop"] - bouts["start"] >= 20))
    i = int(long_ones[len(long_ones) // 2])
    start, stop = int(bouts["start"][i]), int(bouts["stop"][i])
    click_canvas(ethogram.plot.canvas, (start + stop) / 2, 0.0, ethogram.artists.ax)
    assert int(round(viewer.dims.point[0])) == start, (viewer.dims.point, start)
    say(f"clicked the wing-extension bout {start}-{stop} of track_0: viewer at frame {start}")
    from napari_skelmae.cli.tracks import zoom_to_animals

    zoom_to_animals(viewer, tracks, start)
    shoot("colour")

    # 7. export -----------------------------------------------------------------------------
    dock(viewer, "Export")
    exp = _docked_widget(viewer, "Export")
    only_docks(viewer, "Export")
    (work / "export").mkdir()
    exp.folder.setText(str(shown_work / "export"))
    exp.run_button.click()
    wait_for_worker(exp, 300, "the export")
    assert set(exp.written) == {"parquet", "csv", "slp", "boris"}, exp.status.text()
    say(exp.status.text())
    view_frame(viewer, tracks, FRAME)
    shoot("export")

    # 8. the console: the same steps in a few calls -----------------------------------------
    only_docks(viewer)
    qt_viewer = viewer.window._qt_viewer
    qt_viewer.toggle_console_visibility()
    pump(1.0)
    console = qt_viewer.console
    (work / "console").mkdir()
    console.clear()
    for line in CONSOLE_LINES:
        console.execute(line.format(work=shown_work))
        wait_until(lambda: not console._executing, 300, f"the console to run {line!r}")
        pump(0.3)
    written = sorted(p.name for p in (work / "console").iterdir())
    assert len(written) == 4, f"the console export wrote {written}"
    assert session(viewer).results(points).classifier is not None
    only_docks(viewer)  # classify_layer showed the ethogram again: the console alone
    from qtpy.QtCore import Qt

    viewer.window._qt_window.resizeDocks([qt_viewer.dockConsole], [520],
                                         Qt.Orientation.Vertical)
    shoot("console")

    say(f"done in {time.perf_counter() - started:.0f} s")
    viewer.close()
    return 0


def _docked_widget(viewer, prefix: str):
    """The widget of the plugin dock whose name starts with ``prefix``."""
    for name, widget in viewer.window.dock_widgets.items():
        if name.startswith(prefix):
            return widget
    raise SystemExit(f"make_guide_screenshots: no dock widget {prefix!r}")


def check_views_jump(viewer, ethogram, emap) -> None:
    """Clicking a bout in the ethogram, or a point of the map, moves the viewer to it."""
    bouts = ethogram.artists.bouts
    i = len(bouts["start"]) // 2
    start, stop = int(bouts["start"][i]), int(bouts["stop"][i])
    click_canvas(ethogram.plot.canvas, (start + stop) / 2, float(bouts["individual"][i]),
                 ethogram.artists.ax)
    assert int(round(viewer.dims.point[0])) == start, (viewer.dims.point, start)
    xy = emap.artists.xy
    j = int(np.flatnonzero(np.isfinite(xy).all(axis=1))[-1])
    click_canvas(emap.plot.canvas, xy[j, 0], xy[j, 1], emap.artists.ax)
    jumped = int(round(viewer.dims.point[0]))
    say(f"ethogram click: bout {start}-{stop} -> frame {start}; map click -> frame {jumped} "
        f"(the point's frame: {emap.frames[j]:g})")


if __name__ == "__main__":
    sys.exit(main())
