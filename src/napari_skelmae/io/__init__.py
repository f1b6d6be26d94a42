"""Readers: one call, :func:`load_tracks`, for every supported pose format.

The format is sniffed from the file's content first and its suffix second, because users
rename files and several formats share ``.h5`` (SLEAP analysis, DeepLabCut, JABS, NWB,
netCDF). Each format lives in its own module exposing ``read(path, fps=None) -> PoseTracks``;
this module only chooses one, finds the video and names the file in every error.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

from ..errors import SkelmaeWarning, TracksFileError, UnsupportedFormatError
from ..tracks import PoseTracks
from ._common import check_readable_file, hdf5_keys, head_lines, is_gzip, is_hdf5

__all__ = ["FORMATS", "detect_format", "load_tracks"]

#: format name -> (module under napari_skelmae.io, human description)
FORMATS: dict[str, tuple[str, str]] = {
    "slp": ("sleap", "SLEAP labels/predictions (.slp)"),
    "sleap_analysis": ("sleap", "SLEAP analysis HDF5 (.analysis.h5)"),
    "dlc": ("dlc", "DeepLabCut / Lightning Pose table (.h5 or .csv)"),
    "simba": ("simba", "SimBA flat pose table (.csv)"),
    "movement": ("movement", "movement poses dataset (.nc)"),
    "jabs": ("jabs", "JABS pose estimation (.h5)"),
    "nwb": ("nwb", "NWB file with ndx-pose PoseEstimation (.nwb)"),
}

_READER_FUNCS = {"slp": "read_slp", "sleap_analysis": "read_analysis_h5"}

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v", ".webm"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif"}


def detect_format(path: str | os.PathLike) -> str:
    """The format name of a tracks file, from its content (suffix only as a tie-breaker).

    Raises :class:`UnsupportedFormatError` naming the file and what it seems to be instead.
    """
    p = check_readable_file(path)
    suffix = p.suffix.lower()
    if is_hdf5(p):
        keys, attrs = hdf5_keys(p)
        if {"frames", "metadata"} <= keys:
            return "slp"  # the SLEAP reader names any missing dataset (e.g. 'instances')
        if "tracks" in keys and "node_names" in keys:
            return "sleap_analysis"
        if "node_names" in keys and "track_names" in keys:
            raise TracksFileError(p, "SLEAP analysis file without a 'tracks' dataset")
        if "poseest" in keys:
            return "jabs"
        if "nwb_version" in attrs or {"acquisition", "processing"} <= keys:
            return "nwb"
        if "position" in keys or "_NCProperties" in attrs:
            return "movement"
        if "df_with_missing" in keys or "PYTABLES_FORMAT_VERSION" in attrs:
            return "dlc"  # pandas HDFStore; the DLC reader refuses non-pose tables
        raise UnsupportedFormatError(
            p,
            "an HDF5 file, but not one of the pose formats napari-skelmae reads "
            f"(top-level keys: {sorted(keys)[:10]})",
        )
    if suffix in VIDEO_SUFFIXES:
        raise UnsupportedFormatError(p, "this is a video; open its tracks file instead")
    if suffix in IMAGE_SUFFIXES:
        raise UnsupportedFormatError(p, "this is an image, not pose tracks")
    if suffix in {".slp", ".h5", ".hdf5", ".nwb", ".nc"}:
        raise TracksFileError(p, f"a '{suffix}' file must be HDF5, but this one is not (damaged?)")
    lines = [ln.strip().lstrip("\ufeff") for ln in head_lines(p, 16)]
    first = lines[0]
    cells = [c.strip().strip('"').lower() for c in first.split(",")]
    if cells and cells[0] == "scorer":
        second = lines[1].split(",")[0].strip().lower()
        if second in {"bodyparts", "individuals"}:
            return "dlc"
        if any(c.endswith(("_x", "_y")) for c in cells[1:]):
            return "simba"
    if cells and cells[0] in {"observation id", "time"} or any(
        ln.lower().startswith("time,media file path") for ln in lines
    ):
        raise UnsupportedFormatError(
            p, "this looks like a BORIS event export (behaviour labels), not pose tracks"
        )
    if suffix in {".csv", ".gz", ".tsv"} or is_gzip(p):
        if not any(lines):
            raise TracksFileError(p, "the CSV file holds no rows")
        raise UnsupportedFormatError(
            p,
            "a CSV file without a DeepLabCut header (rows 'scorer', 'bodyparts', 'coords') "
            "or SimBA columns ('<part>_x', '<part>_y', '<part>_p')",
        )
    raise UnsupportedFormatError(
        p, f"unknown file type '{suffix or '(no suffix)'}'; supported formats: " + ", ".join(
            desc for _, desc in FORMATS.values()
        )
    )


def load_tracks(
    path: str | os.PathLike,
    fps: float | None = None,
    format: str = "auto",
    video: str | os.PathLike | bool = True,
) -> PoseTracks:
    """Read pose tracks from any supported file.

    Parameters
    ----------
    path
        A SLEAP ``.slp`` or ``.analysis.h5``, a DeepLabCut ``.h5``/``.csv`` (also gzipped),
        a Lightning Pose or SimBA ``.csv``, a movement ``.nc``, a JABS ``.h5`` or an NWB file.
    fps
        Frame rate to use; overrides what the file says (needed when it says nothing).
    format
        ``"auto"`` (sniff the content) or one of :data:`FORMATS`.
    video
        True: find the video (the path stored in the file, else a video beside the file
        with the same stem or DeepLabCut's ``<video>DLC_<scorer>`` naming); a path: use
        that video; False: do not look. A missing video is a warning, never an error.
    """
    p = check_readable_file(path)
    fmt = detect_format(p) if format == "auto" else format
    if fmt not in FORMATS:
        raise TracksFileError(p, f"unknown format {format!r}; choose from {sorted(FORMATS)}")
    module = importlib.import_module(f"{__name__}.{FORMATS[fmt][0]}")
    reader = getattr(module, _READER_FUNCS.get(fmt, "read"))
    tracks: PoseTracks = reader(p, fps=fps)
    if tracks.n_frames == 0:
        raise TracksFileError(p, "the file holds no frames with tracked points")
    if tracks.n_keypoints == 0 or tracks.n_individuals == 0:
        raise TracksFileError(p, "the file holds no keypoints or no individuals")
    if fps is not None:
        tracks = tracks.replace(fps=fps)
    meta = {"format": fmt, **tracks.metadata}
    tracks = tracks.replace(source_path=p, metadata=meta)
    return _attach_video(tracks, p, video)


def _attach_video(tracks: PoseTracks, path: Path, video: str | os.PathLike | bool) -> PoseTracks:
    """Resolve the video; when the tracks carry no fps, take the video's."""
    if video is False:
        return tracks.replace(video_path=None)
    from ..video import find_video, video_fps

    if video is True:
        found = find_video(path, stored=tracks.video_path)
        if found is None:
            stored = f" (the file names '{tracks.video_path}')" if tracks.video_path else ""
            warnings.warn(
                f"No video found for '{path}'{stored}; showing tracks without video.",
                SkelmaeWarning,
                stacklevel=3,
            )
    else:
        found = Path(video)
        if not found.is_file():
            warnings.warn(
                f"Video '{found}' not found; showing tracks without video.",
                SkelmaeWarning,
                stacklevel=3,
            )
            found = None
    tracks = tracks.replace(video_path=found)
    if tracks.fps is None and found is not None:
        fps = video_fps(found)
        if fps:
            tracks = tracks.replace(fps=fps, metadata={**tracks.metadata, "fps_source": "video"})
    return tracks
