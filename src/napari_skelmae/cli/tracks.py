"""``skelmae info`` and ``skelmae view``: what a tracks file holds, and napari over it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import SkelmaeError


def _tracks_arg(args: argparse.Namespace) -> Path:
    if getattr(args, "sample", False):
        from ..sample_data import sample_path

        return sample_path()
    if not args.file:
        raise SkelmaeError("give a tracks FILE (or --sample for the bundled recording)")
    return Path(args.file)


def _load(args: argparse.Namespace):
    from ..io import load_tracks

    tracks = load_tracks(_tracks_arg(args), fps=args.fps)
    if getattr(args, "merge_fragments", False):
        from ..identity import merge_fragmented_tracks

        tracks = merge_fragmented_tracks(tracks)
    return tracks


def tracks_summary(tracks) -> dict:
    """What `skelmae info` prints, as a dict (also used by --json)."""
    return {
        "file": str(tracks.source_path),
        "format": tracks.metadata.get("format"),
        "frames": tracks.n_frames,
        "first_frame": int(tracks.frame_index.min()),
        "last_frame": int(tracks.frame_index.max()),
        "fps": tracks.fps,
        "fps_source": tracks.metadata.get("fps_source", "file" if tracks.fps else None),
        "duration_s": (
            round(float(tracks.frame_index.max() - tracks.frame_index.min() + 1) / tracks.fps, 3)
            if tracks.fps
            else None
        ),
        "space": f"{tracks.n_space}D",
        "individuals": list(tracks.individual_names),
        "keypoints": list(tracks.keypoint_names),
        "edges": [list(e) for e in tracks.edge_names],
        "missing_fraction": round(tracks.missing_fraction, 4),
        "has_confidence": bool(np.isfinite(tracks.confidence).any()),
        "video": str(tracks.video_path) if tracks.video_path else None,
    }


def cmd_info(args: argparse.Namespace) -> int:
    tracks = _load(args)
    info = tracks_summary(tracks)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, list):
            shown = ", ".join("-".join(v) if isinstance(v, list) else str(v) for v in value)
            value = f"{len(info[key])}: {shown}" if shown else "0"
        elif key == "video" and value is None:
            value = "not found"
        elif key == "missing_fraction":
            value = f"{value:.2%}"
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    import napari

    from ..napari.console import add_layer_tuples
    from ..napari.layers import tracks_to_layers

    tracks = _load(args)
    viewer = napari.Viewer(title=f"napari-skelmae: {tracks.source_path.name}")
    add_layer_tuples(viewer, tracks_to_layers(tracks, trails=args.trails))
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
        viewer.window.resize(width, height)
    if args.frame is not None:
        viewer.dims.set_point(0, args.frame)
    if args.zoom_to_animals:
        zoom_to_animals(viewer, tracks, args.frame)
    if args.screenshot:
        out = Path(args.screenshot)
        out.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(out), canvas_only=not args.with_ui, flash=False)
        viewer.close()
        print(f"screenshot written to {out}")
        return 0
    napari.run()
    return 0


def zoom_to_animals(viewer, tracks, frame: int | None) -> None:
    """Centre the camera on the animals of one frame, with a margin of half their extent."""
    rows = np.flatnonzero(tracks.frame_index == (frame if frame is not None else
                                                 tracks.frame_index[0]))
    pts = tracks.positions[rows].reshape(-1, tracks.n_space)
    pts = pts[~np.isnan(pts).any(axis=1)]
    if not len(pts):
        return
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = float(max(hi - lo)) * 2.0 + 1.0
    cx, cy = (lo + hi)[:2] / 2
    # napari 0.9 moved the camera to viewer.scene.camera (viewer.camera is deprecated)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (float(cy), float(cx))
    canvas = min(viewer.window._qt_viewer.canvas.size)  # pixels of the shorter canvas side
    camera.zoom = canvas / extent

def add_tracks_parsers(sub) -> None:
    """The ``info`` and ``view`` commands."""

    def tracks_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("file", nargs="?", help="tracks file (.slp, .h5, .csv, .nc, .nwb)")
        p.add_argument("--sample", action="store_true", help="use the bundled two-fly sample")
        p.add_argument("--fps", type=float, default=None, help="override the frame rate")
        p.add_argument(
            "--merge-fragments", action="store_true", help="join fragmented track ids"
        )
        return p

    p = tracks_command("info", "Print what was read from a tracks file.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = tracks_command("view", "Open napari with the tracks over their video.")
    p.add_argument("--frame", type=int, default=None, help="video frame to show first")
    p.add_argument("--trails", action="store_true", help="add a trails (Tracks) layer")
    p.add_argument("--screenshot", default=None, help="save a screenshot to this PNG and exit")
    p.add_argument("--with-ui", action="store_true", help="screenshot the whole window")
    p.add_argument("--size", default=None, help="window size, e.g. 1400x900")
    p.add_argument("--zoom-to-animals", action="store_true",
                   help="centre and zoom the view on the animals")
    p.set_defaults(func=cmd_view)
