"""``skelmae demo``: the whole pipeline on the bundled two-fly recording, in a few minutes.

pretrain a small Skeleton2vec model -> per-frame embeddings -> behaviour clusters -> results
files (table, SLEAP events, BORIS table, model, clusterer) -> pictures: napari with the flies
coloured by cluster and the ethogram docked below the video, plus the ethogram and the
embedding map as PNGs. Every step is one call of the public API, the same calls a console
user makes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_demo_parser", "run_demo"]

#: frame the screenshot shows (both flies in view, courtship under way)
DEMO_FRAME = 600


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="Run the whole pipeline on the bundled sample recording.",
                       description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--method", default="skeleton2vec",
                   choices=("mamp", "skeleton2vec", "skeletonmae", "msae"))
    p.add_argument("--steps", type=int, default=200, help="pretraining steps (default 200)")
    p.add_argument("--n-clusters", type=int, default=6, help="behaviour clusters (default 6)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-screenshot", action="store_true",
                   help="skip the napari screenshot (needs a display, e.g. xvfb-run)")
    p.set_defaults(func=cmd_demo)


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run_demo(out: str | Path = "out/demo", *, method: str = "skeleton2vec", steps: int = 200,
             n_clusters: int = 6, device: str = "auto", screenshot: bool = True
             ) -> dict[str, Path]:
    """Run the pipeline; returns the files written, by kind."""
    from ..analysis.bouts import frames_to_bouts
    from ..analysis.clustering import cluster
    from ..export import export_all
    from ..results import results_table
    from ..sample_data import sample_tracks
    from ..training import pretrain

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tracks = sample_tracks()
    _say(f"tracks: {tracks!r}")

    reported = set()

    def progress(p) -> None:  # called after each log interval and again after validation
        if (p.step % 50 == 0 or p.step == p.total_steps) and p.step not in reported:
            reported.add(p.step)
            val = f", val {p.val_loss:.4f}" if p.val_loss is not None else ""
            _say(f"pretrain {method}: step {p.step}/{p.total_steps}, loss "
                 f"{p.train_loss:.4f}{val}, {p.windows_per_s:.0f} windows/s")

    # the default per-frame egocentric windows: posture (wing extension, leg and abdomen
    # movements) is what tells these flies' behaviours apart (docs/user-guide.md measures it)
    model = pretrain(tracks, method, preset="small", max_steps=steps, batch_size=32,
                     device=device, callbacks=[progress], log_every=10)
    h = model.history
    _say(f"held-out loss {h['initial_val_loss']:.4f} -> {h['final_val_loss']:.4f}"
         + (f" (trivial predictor {h['trivial_val_loss']:.4f})"
            if h.get("trivial_val_loss") is not None else ""))
    files: dict[str, Path] = {"model": model.save(out / "demo.skelmae")}

    embeddings = model.embed(tracks)
    fps = tracks.fps or 25.0
    labels, clusterer = cluster(embeddings, "kmeans", n_clusters,
                                min_bout_frames=max(1, round(0.2 * fps)),
                                frame_index=tracks.frame_index)
    files["clusterer"] = clusterer.save(out / "demo.clusters.skelmae")
    names = [f"cluster {k}" for k in range(clusterer.n_clusters)]
    _say(f"{clusterer!r}")
    table = results_table(tracks, embeddings=embeddings, clusters=labels,
                          cluster_names=names, model=model)
    bouts = frames_to_bouts(labels, names, tracks.frame_index, tracks.individual_names)
    _say(f"{len(bouts)} cluster bouts; per individual: "
         + ", ".join(f"{k} {v}" for k, v in bouts.groupby("individual").size().items()))
    files.update(export_all(tracks, table, bouts=bouts, folder=out))
    files.update(_plots(out, tracks, embeddings, labels, names))
    if screenshot:
        files["screenshot"] = _screenshot(out / "demo-napari.png", tracks, labels, names)
    _say(f"done in {time.perf_counter() - started:.0f} s")
    for kind, path in files.items():
        print(f"wrote {path} ({kind})")
    return files


def _plots(out: Path, tracks, embeddings, labels, names) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from ..io._common import atomic_output
    from ..plots import embedding_map_coordinates, plot_embedding_map, plot_ethogram

    written = {}
    fig = Figure(figsize=(12, 2.4), dpi=100, layout="constrained")
    plot_ethogram(fig.add_subplot(), labels, names, tracks.frame_index,
                  tracks.individual_names, title="behaviour clusters of the two flies")
    path = out / "demo-ethogram.png"
    with atomic_output(path, "ethogram picture") as tmp:
        fig.savefig(tmp, format="png")
    written["ethogram"] = path
    fig = Figure(figsize=(7, 5.5), dpi=100, layout="constrained")
    xy = embedding_map_coordinates(embeddings, "auto")
    plot_embedding_map(fig.add_subplot(), xy, labels, names, title="per-frame embeddings")
    path = out / "demo-embedding-map.png"
    with atomic_output(path, "embedding map picture") as tmp:
        fig.savefig(tmp, format="png")
    written["embedding map"] = path
    return written


def _screenshot(path: Path, tracks, labels, names) -> Path:
    """napari with the flies coloured by cluster and the ethogram docked below."""
    import napari

    from ..io._common import atomic_output
    from ..napari.console import add_layer_tuples
    from ..napari.layers import label_layers, tracks_to_layers
    from ..napari.widgets._views import show_ethogram
    from .tracks import zoom_to_animals

    viewer = napari.Viewer(title="napari-skelmae demo", show=True)
    try:
        layers = add_layer_tuples(viewer, tracks_to_layers(tracks))
        points = next(ly for ly in layers if ly._type_string == "points")
        skeleton = next((ly for ly in layers if ly._type_string == "vectors"), None)
        label_layers(points, labels, names, column="cluster", skeleton=skeleton)
        viewer.window.resize(1500, 1000)
        show_ethogram(viewer, tracks, labels, names, title="clusters")
        viewer.dims.set_point(0, DEMO_FRAME)
        zoom_to_animals(viewer, tracks, DEMO_FRAME)
        from qtpy.QtWidgets import QApplication

        for _ in range(5):
            QApplication.processEvents()
        picture = viewer.screenshot(canvas_only=False, flash=False)
        from PIL import Image

        with atomic_output(path, "napari screenshot") as tmp:
            Image.fromarray(picture).save(tmp, format="PNG")
    finally:
        viewer.close()
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        run_demo(args.out, method=args.method, steps=args.steps, n_clusters=args.n_clusters,
                 device=args.device, screenshot=not args.no_screenshot)
    except ImportError as e:  # pragma: no cover - a broken install
        print(f"skelmae: error: {e}", file=sys.stderr)
        return 2
    return 0
