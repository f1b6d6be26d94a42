"""Result files beside the video: the results table, SLEAP events and a BORIS event table.

``export_all(tracks, table)`` writes, into the video's folder (else the tracks file's, or a
chosen ``folder``), with ``<stem>`` the video's stem (else the tracks file's):

``<stem>.skelmae.parquet``    the results table (:mod:`napari_skelmae.results`), with what made
                              it in the schema metadata (pandas ``attrs``, key ``PANDAS_ATTRS``)
``<stem>.skelmae.csv``        the same table for spreadsheets (no metadata)
``<stem>.skelmae.slp``        a copy of the source ``.slp`` with the behaviour bouts as sleap-io
                              events (SLP format 2.6); built from the tracks for other formats
``<stem>.skelmae.boris.csv``  the bouts as a BORIS event export (START/STOP rows)

Every file is written to a temporary file in the target folder and moved into place only when
all of them are complete, so a failure or a cancel leaves the old files (or none), never part
of a set or half a file. The original tracks file is never modified.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .analysis.bouts import check_bouts
from .errors import SkelmaeError, SkelmaeWarning
from .io._common import OutputFileError, _short, atomic_output
from .results import (
    EMBEDDING_PREFIX,
    METADATA_KEY,
    PROBABILITY_PREFIX,
    results_from_table,
)
from .tracks import PoseTracks

__all__ = [
    "BORIS_COLUMNS",
    "SUFFIXES",
    "export_all",
    "output_location",
    "read_results",
    "write_boris_csv",
    "write_results",
    "write_sleap_events",
]

#: file kind -> suffix after the stem
SUFFIXES = {
    "parquet": ".skelmae.parquet",
    "csv": ".skelmae.csv",
    "slp": ".skelmae.slp",
    "boris": ".skelmae.boris.csv",
}
#: the column header of BORIS' event export, after its 15-line header block
BORIS_COLUMNS = ["Time", "Media file path", "Total length", "FPS", "Subject", "Behavior",
                 "Behavioral category", "Comment", "Status"]
#: ``source`` of the SLEAP events written here; events with it are replaced on re-export
EVENT_SOURCE = "napari-skelmae"


# ----------------------------------------------------------------------------- where
def output_location(tracks: PoseTracks, folder: str | os.PathLike | None = None,
                    stem: str | None = None) -> tuple[Path, str]:
    """The folder and file stem of the result files of ``tracks``.

    Folder: ``folder`` if given, else the video's folder when the video exists, else the
    tracks file's folder. Stem: ``stem`` if given, else the video's stem, else the tracks
    file's (``predictions.slp`` -> ``predictions``)."""
    video = _existing_video(tracks)
    source = Path(tracks.source_path) if tracks.source_path is not None else None
    if folder is not None:
        out = Path(folder)
    elif video is not None:
        out = video.parent
    elif source is not None:
        out = source.parent
    else:
        raise SkelmaeError("these tracks have neither a video nor a tracks file to write "
                           "results beside; choose a folder")
    if stem is None:
        if tracks.video_path is not None:
            stem = Path(tracks.video_path).stem
        elif source is not None:
            stem = source.name[:-len(".slp")] if source.name.endswith(".slp") else source.stem
        else:
            stem = "tracks"
    if not stem or Path(stem).name != stem:
        raise SkelmaeError(f"the file stem {stem!r} must be a plain file name")
    return out, stem


def _existing_video(tracks: PoseTracks) -> Path | None:
    if tracks.video_path is None:
        return None
    video = Path(tracks.video_path)
    if video.is_file():
        return video
    if not video.is_absolute() and tracks.source_path is not None:
        beside = Path(tracks.source_path).parent / video
        if beside.is_file():
            return beside
    return None


def _not_the_source(path: Path, tracks: PoseTracks) -> None:
    """The tracks file is never overwritten."""
    if tracks.source_path is not None and path.resolve() == Path(tracks.source_path).resolve():
        raise SkelmaeError(f"'{path}' is the tracks file itself; choose another folder, stem "
                           "or path")


def _check_folder(folder: Path) -> None:
    """A clear error when ``folder`` is missing, not a folder or refuses new files. The test
    is creating (and removing) a file there: permission bits say nothing for root, and
    read-only mounts or pseudo file systems refuse writes whatever the bits say."""
    if not folder.exists():
        raise OutputFileError(f"Cannot write results into '{folder}': the folder does not exist")
    if not folder.is_dir():
        raise OutputFileError(f"Cannot write results into '{folder}': it is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".skelmae-write-test.", suffix=".tmp")
    except OSError as e:
        raise OutputFileError(f"Cannot write results into folder '{folder}': it is not "
                              f"writable ({e.strerror or _short(e)})") from e
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


@contextlib.contextmanager
def _all_or_nothing(targets: dict[str, tuple[Path, str]]):
    """Temporary paths for every target; they replace the targets only when the block
    succeeds, all after every one of them is complete."""
    with contextlib.ExitStack() as stack:
        yield {key: stack.enter_context(atomic_output(path, what))
               for key, (path, what) in targets.items()}


# ----------------------------------------------------------------- the results table
def write_results(table: pd.DataFrame, tracks: PoseTracks, folder: str | os.PathLike | None = None,
                  stem: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.skelmae.parquet`` and ``<stem>.skelmae.csv`` (both or neither).

    The table is checked against ``tracks`` first (frames and individuals must be theirs).
    Returns ``{"parquet": path, "csv": path}``."""
    out, stem = output_location(tracks, folder, stem)
    _check_table(table, tracks)
    _check_folder(out)
    targets = {"parquet": (out / f"{stem}{SUFFIXES['parquet']}", "results table"),
               "csv": (out / f"{stem}{SUFFIXES['csv']}", "results CSV")}
    with _all_or_nothing(targets) as tmp:
        _write_parquet(table, tracks, tmp["parquet"])
        _write_csv(table, tmp["csv"])
    return {key: path for key, (path, _) in targets.items()}


def _check_table(table: pd.DataFrame, tracks: PoseTracks) -> None:
    if not isinstance(table, pd.DataFrame):
        raise SkelmaeError(f"the results must be a pandas DataFrame, got {type(table).__name__}")
    results_from_table(table, tracks)  # frames, individuals and behaviours must fit


def _metadata(table: pd.DataFrame, tracks: PoseTracks) -> dict[str, Any]:
    from . import __version__

    meta = dict(table.attrs.get(METADATA_KEY) or {})
    meta.setdefault("format", "napari-skelmae results")
    meta.setdefault("package_version", __version__)
    meta.setdefault("fps", tracks.fps)
    meta["written_by"] = f"napari-skelmae {__version__}"
    return meta


def _write_parquet(table: pd.DataFrame, tracks: PoseTracks, path: Path) -> None:
    out = table.copy()
    out.attrs = {METADATA_KEY: _metadata(table, tracks)}
    out.to_parquet(path, index=False)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False)


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """A results table from ``<stem>.skelmae.parquet`` (with its metadata in ``attrs``) or
    ``.csv`` (names become categoricals, float columns float32 as written)."""
    p = Path(path)

    def fail(problem: str) -> SkelmaeError:
        return SkelmaeError(f"Cannot read results from '{p}': {problem}")

    if not p.is_file():
        raise fail("no such file")
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise fail("results tables are .parquet or .csv files")
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(p)
        else:  # names such as "NA" stay names; only empty cells are missing
            table = pd.read_csv(p, keep_default_na=False, na_values=[""])
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - whatever pandas or pyarrow raised
        raise fail(f"not a readable {suffix[1:]} file ({_short(e)})") from e
    missing = [c for c in ("frame", "individual") if c not in table.columns]
    if missing:
        raise fail(f"not a napari-skelmae results table: no column(s) {missing}")
    if suffix == ".csv":
        try:
            table = _csv_dtypes(table)
        except (TypeError, ValueError) as e:
            raise fail(f"a column holds values of the wrong kind ({_short(e)})") from e
    return table


def _csv_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["frame"] = table["frame"].astype(np.int64)
    if "time" in table:
        table["time"] = table["time"].astype(np.float64)
    table["individual"] = pd.Categorical(table["individual"].astype(str),
                                         categories=pd.unique(table["individual"].astype(str)))
    if "cluster" in table:
        table["cluster"] = table["cluster"].fillna(-1).astype(np.int64)
    names = [c[len(PROBABILITY_PREFIX):] for c in table.columns
             if c.startswith(PROBABILITY_PREFIX)]
    for column in ("behaviour", "cluster_name"):
        if column in table:
            values = table[column].astype(object).where(table[column].notna(), None)
            found = sorted({str(v) for v in values if v is not None})
            categories = names + [n for n in found if n not in names] if column == "behaviour" \
                else found
            table[column] = pd.Categorical([None if v is None else str(v) for v in values],
                                           categories=categories)
    for column in table.columns:
        if column == "probability" or column.startswith((PROBABILITY_PREFIX, EMBEDDING_PREFIX)):
            table[column] = table[column].astype(np.float32)
    return table


# ---------------------------------------------------------------------- SLEAP events
def write_sleap_events(tracks: PoseTracks, bouts: pd.DataFrame,
                       path: str | os.PathLike | None = None, *, predicted: bool = True,
                       folder: str | os.PathLike | None = None) -> Path:
    """A ``.slp`` holding the poses of ``tracks`` and ``bouts`` as sleap-io events.

    For tracks read from a ``.slp`` it is a copy of that file (everything in it kept; earlier
    napari-skelmae events replaced, other events kept) plus one event per bout: a
    ``PredictedEvent`` (``score`` = the bout's probability) or, with ``predicted=False``, a
    ``UserEvent``, whose ``subject`` is the bout's track, on the video the tracks came from.
    For other formats (and for tracks whose individuals are no longer the file's tracks, e.g.
    after merging fragmented tracks) the file is built from the tracks: their skeleton, one
    SLEAP track per individual, a predicted instance per tracked animal and frame (a user
    instance where the points have no scores). Default path: ``<stem>.skelmae.slp`` (see
    :func:`output_location`)."""
    if path is None:
        out, stem = output_location(tracks, folder)
        path = out / f"{stem}{SUFFIXES['slp']}"
    p = Path(path)
    _not_the_source(p, tracks)
    _check_folder(p.parent)
    labels = _labels_with_events(tracks, bouts, predicted, p.parent)
    with atomic_output(p, "SLEAP file with events") as tmp:
        _save_slp(labels, tmp)
    return p


def _save_slp(labels, path: Path) -> None:
    import sleap_io as sio

    sio.save_slp(labels, os.fspath(path), verbose=False, preserve_unknown=True,
                 save_embedding_vectors=True)


def _labels_with_events(tracks: PoseTracks, bouts: pd.DataFrame, predicted: bool,
                        out_folder: Path):
    import sleap_io as sio

    if tracks.is_3d:
        raise SkelmaeError("SLEAP files hold 2-D poses; these tracks are 3-D")
    bouts = _check_bouts_for_files(bouts, tracks)
    copied = _copy_source_labels(tracks, out_folder)
    if copied is not None:
        labels, video, track_of = copied
    else:
        labels, video, track_of = _labels_from_tracks(tracks)

    from . import __version__

    types = {name: sio.EventType(name=name) for name in sorted(set(bouts["behaviour"]))}
    cls = sio.PredictedEvent if predicted else sio.UserEvent
    has_probability = "probability" in bouts.columns
    for row in bouts.itertuples(index=False):
        kwargs: dict[str, Any] = dict(
            type=types[row.behaviour], video=video, start_frame=int(row.start_frame),
            end_frame=int(row.stop_frame), subject=track_of[row.individual],
            source=EVENT_SOURCE, metadata={"package_version": __version__})
        if predicted and has_probability and np.isfinite(row.probability):
            kwargs["score"] = float(row.probability)
        labels.events.append(cls(**kwargs))
    return labels


def _check_bouts_for_files(bouts: pd.DataFrame, tracks: PoseTracks | None) -> pd.DataFrame:
    """Valid bouts; overlapping bouts of different behaviours are fine in event files, of
    one behaviour of one individual not (their START/STOP pairs would be ambiguous)."""
    if not isinstance(bouts, pd.DataFrame):
        raise SkelmaeError(f"bouts must be a pandas DataFrame, got {type(bouts).__name__}")
    names = None if tracks is None else [str(n) for n in tracks.individual_names]
    bouts = check_bouts(bouts, names, allow_overlap=True)
    for (individual, behaviour), group in bouts.groupby(["individual", "behaviour"]):
        g = group.sort_values("start_frame")
        overlap = g["start_frame"].to_numpy()[1:] <= g["stop_frame"].to_numpy()[:-1]
        if overlap.any():
            k = int(np.flatnonzero(overlap)[0])
            raise SkelmaeError(
                f"the bouts: two '{behaviour}' bouts of {individual} overlap (frames "
                f"{g['start_frame'].iloc[k]}-{g['stop_frame'].iloc[k]} and "
                f"{g['start_frame'].iloc[k + 1]}-{g['stop_frame'].iloc[k + 1]})")
    return bouts


def _copy_source_labels(tracks: PoseTracks, out_folder: Path):
    """The source .slp's labels, its video and a track per individual; None when the tracks
    did not come from a .slp (or no longer match its tracks)."""
    import sleap_io as sio

    from .io._common import reading
    from .io.sleap import _unique

    source = tracks.source_path
    if source is None or Path(source).suffix.lower() != ".slp" or tracks.metadata.get(
            "format", "slp") != "slp":
        return None
    source = Path(source)
    if not source.is_file():
        warnings.warn(f"'{source}' is gone; the SLEAP file with events is built from the "
                      "tracks instead of copied", SkelmaeWarning, stacklevel=4)
        return None
    if "merged_from" in tracks.metadata:
        warnings.warn(f"the individuals of these tracks were merged from the tracks of "
                      f"'{source}', so the SLEAP file with events is built from the merged "
                      "tracks instead of copied", SkelmaeWarning, stacklevel=4)
        return None
    with reading(source, "a SLEAP .slp file"):
        labels = sio.load_slp(os.fspath(source), open_videos=False)
    file_names = _unique([t.name or f"track_{i}" for i, t in enumerate(labels.tracks)])
    by_name = dict(zip(file_names, labels.tracks))
    track_of: dict[str, Any] = {}
    for name in (str(n) for n in tracks.individual_names):
        if name in by_name:
            track_of[name] = by_name[name]
        elif name.startswith(("untracked_", "instance_")) and name[name.index("_") + 1:].isdigit():
            # untracked instances of the file: a new, empty track carries their events
            track_of[name] = sio.Track(name=name)
            labels.tracks.append(track_of[name])
        else:
            warnings.warn(f"individual '{name}' is not a track of '{source}', so the SLEAP file "
                          "with events is built from the tracks instead of copied",
                          SkelmaeWarning, stacklevel=4)
            return None
    video_index = int(tracks.metadata.get("video_index", 0))
    if not 0 <= video_index < len(labels.videos):
        return None
    video = labels.videos[video_index]
    labels.events[:] = [ev for ev in labels.events if ev.source != EVENT_SOURCE]
    if out_folder.resolve() != source.parent.resolve():
        _absolute_video_paths(labels, source.parent)
    return labels, video, track_of


def _absolute_video_paths(labels, source_folder: Path) -> None:
    """Videos named relative to the source file still resolve from a copy elsewhere."""
    for video in labels.videos:
        name = video.filename
        if isinstance(name, str) and name and not Path(name).is_absolute():
            beside = source_folder / name
            if beside.is_file():
                absolute = beside.resolve().as_posix()
                video.filename = absolute
                video.backend_metadata["filename"] = absolute


def _labels_from_tracks(tracks: PoseTracks):
    """sleap-io Labels holding the poses of ``tracks`` (2-D), a video and a track per
    individual."""
    import sleap_io as sio

    video_file = _existing_video(tracks) or tracks.video_path
    if video_file is None:
        where = f" of '{tracks.source_path}'" if tracks.source_path else ""
        raise SkelmaeError(f"the tracks{where} have no video, and SLEAP events belong to a "
                           "video; load the tracks with their video")
    metadata = {"fps": tracks.fps} if tracks.fps else {}
    video = sio.Video(filename=Path(video_file).as_posix(), open_backend=False,
                      backend_metadata=metadata)
    keypoints = [str(k) for k in tracks.keypoint_names]
    symmetries = [tuple(pair) for pair in tracks.metadata.get("symmetries") or []
                  if len(pair) == 2 and all(k in keypoints for k in pair)]
    skeleton = sio.Skeleton(keypoints, edges=[tuple(e) for e in tracks.edge_names],
                            symmetries=symmetries,
                            name=str(tracks.metadata.get("skeleton") or "skeleton"))
    track_of = {str(n): sio.Track(name=str(n)) for n in tracks.individual_names}
    track_list = list(track_of.values())
    present = ~tracks.missing.all(axis=2)
    frames = []
    for row in np.argsort(tracks.frame_index, kind="stable"):
        instances = []
        for i in np.flatnonzero(present[row]):
            points = tracks.positions[row, i]
            scores = tracks.confidence[row, i]
            tracked = ~np.isnan(points).any(axis=1)
            if np.isnan(scores[tracked]).all():  # a human's points carry no score
                instances.append(sio.Instance.from_numpy(points, skeleton=skeleton,
                                                         track=track_list[i]))
            else:
                instances.append(sio.PredictedInstance.from_numpy(
                    points, skeleton=skeleton, point_scores=scores,
                    score=float(np.nanmean(scores[tracked])), track=track_list[i]))
        if instances:
            frames.append(sio.LabeledFrame(video=video, frame_idx=int(tracks.frame_index[row]),
                                           instances=instances))
    labels = sio.Labels(frames, videos=[video], skeletons=[skeleton], tracks=track_list)
    return labels, video, track_of


# ------------------------------------------------------------------------------ BORIS
def write_boris_csv(bouts: pd.DataFrame, path: str | os.PathLike, *, fps: float,
                    media_path: str | os.PathLike | None = None,
                    observation_id: str | None = None,
                    total_length: float | None = None) -> Path:
    """The bouts as a BORIS event export (what BORIS writes with "Export events"): a 15-line
    header block, then ``Time,Media file path,Total length,FPS,Subject,Behavior,...,Status``
    rows, a START and a STOP per bout, sorted by time.

    Times: a bout of video frames ``a..b`` (inclusive) STARTs at ``a / fps`` and STOPs at
    ``(b + 1) / fps``, when its last frame ends (the half-open reading of
    :func:`napari_skelmae.analysis.labels.load_labels`), so BORIS' durations are frames / fps.
    Rounded to BORIS' milliseconds, a START is rounded up and a STOP down, so both stay
    inside their frames and read back exactly (below 1000 fps; more digits above).
    ``Total length`` is the media's duration in seconds (default: the end of the last bout).
    A bout's probability goes into the START row's comment."""
    if fps is None or not np.isfinite(float(fps)) or float(fps) <= 0:
        raise SkelmaeError(f"BORIS event times need the frame rate; got fps={fps!r}")
    p = Path(path)
    rows = _boris_rows(_check_bouts_for_files(bouts, None), float(fps),
                       media_path, total_length)
    _check_folder(p.parent)
    observation_id = observation_id or (Path(media_path).stem if media_path else p.stem)
    with atomic_output(p, "BORIS event table") as tmp:
        _write_boris(tmp, rows, observation_id, media_path)
    return p


def _boris_rows(bouts: pd.DataFrame, fps: float, media_path, total_length) -> list[list[str]]:
    # BORIS writes milliseconds. Each time is snapped INTO its frame (a START up to the next
    # tick after the frame begins, a STOP down to the tick before the last frame ends), so
    # any reader of the half-open intervals gets the frames back whatever the rounding, as
    # long as a frame lasts longer than a tick: faster cameras get more digits.
    decimals = 3 if fps < 1000 else math.ceil(math.log10(fps)) + 1
    ticks = 10**decimals / fps  # ticks per frame
    media = "" if media_path is None else os.fspath(media_path)
    if total_length is None:
        total_length = (int(bouts["stop_frame"].max()) + 1) / fps if len(bouts) else 0.0
    events = []
    for row in bouts.itertuples(index=False):
        comment = ""
        probability = getattr(row, "probability", None)
        if probability is not None and np.isfinite(probability):
            comment = f"probability {probability:.3f}"
        start = math.ceil(int(row.start_frame) * ticks - 1e-6)
        stop = math.floor((int(row.stop_frame) + 1) * ticks + 1e-6)
        events.append((start, 1, row.individual, row.behaviour, comment, "START"))
        events.append((stop, 0, row.individual, row.behaviour, "", "STOP"))
    events.sort(key=lambda e: (e[0], e[1]))  # at one time, STOPs before STARTs
    return [[f"{tick / 10**decimals:.{decimals}f}", media, f"{float(total_length):.3f}",
             f"{fps}", subject, behaviour, "", comment, status]
            for tick, _, subject, behaviour, comment, status in events]


def _write_boris(path: Path, rows: list[list[str]], observation_id: str, media_path) -> None:
    from . import __version__

    width = len(BORIS_COLUMNS)
    blank = [""] * width

    def line(*cells: str) -> list[str]:
        return list(cells) + [""] * (width - len(cells))

    header = [
        line("Observation id", observation_id), blank,
        line("Media file(s)"), blank,
        line("Player #1", "" if media_path is None else os.fspath(media_path)), blank,
        line("Observation date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")), blank,
        line("Description", f"behaviour bouts from napari-skelmae {__version__}"), blank,
        line("Time offset (s)", "0.0"), blank,
        line("independent variables"),
        line("variable", "value"), blank,
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # BORIS' own files end lines with \r\n, as csv does
        writer.writerows(header)
        writer.writerow(BORIS_COLUMNS)
        writer.writerows(rows)


# --------------------------------------------------------------------------- together
def export_all(tracks: PoseTracks, table: pd.DataFrame, bouts: pd.DataFrame | None = None,
               folder: str | os.PathLike | None = None, stem: str | None = None,
               *, predicted: bool = True) -> dict[str, Path]:
    """Every result file of a recording in one go (what the Export widget and the CLI call).

    Writes the results table (parquet and CSV) and, when there are behaviour bouts
    (``bouts``, else those of the table's behaviour column), the SLEAP file with events and
    the BORIS table. The BORIS table needs the frame rate and the SLEAP file 2-D tracks with a
    video or a .slp source: without them that file is skipped with a warning. All files are
    moved into place together, after every one is complete. Returns ``{kind: path}``."""
    out, stem = output_location(tracks, folder, stem)
    _check_table(table, tracks)
    _check_folder(out)
    if bouts is None:
        results = results_from_table(table, tracks)
        bouts = results.bouts() if (results.behaviours >= 0).any() else None
    elif len(bouts):
        bouts = _check_bouts_for_files(bouts, tracks)
    targets = {"parquet": (out / f"{stem}{SUFFIXES['parquet']}", "results table"),
               "csv": (out / f"{stem}{SUFFIXES['csv']}", "results CSV")}
    labels = None
    if bouts is not None and len(bouts):
        try:
            labels = _labels_with_events(tracks, bouts, predicted, out)
            targets["slp"] = (out / f"{stem}{SUFFIXES['slp']}", "SLEAP file with events")
        except SkelmaeError as e:
            warnings.warn(f"no SLEAP file with events: {e}", SkelmaeWarning, stacklevel=2)
        if tracks.fps:
            targets["boris"] = (out / f"{stem}{SUFFIXES['boris']}", "BORIS event table")
        else:
            warnings.warn("no BORIS table: the frame rate of these tracks is unknown",
                          SkelmaeWarning, stacklevel=2)
    for path, _ in targets.values():
        _not_the_source(path, tracks)
    with _all_or_nothing(targets) as tmp:
        _write_parquet(table, tracks, tmp["parquet"])
        _write_csv(table, tmp["csv"])
        if "slp" in tmp:
            _save_slp(labels, tmp["slp"])
        if "boris" in tmp:
            media = _existing_video(tracks) or tracks.video_path
            last = max(int(tracks.frame_index.max()), int(bouts["stop_frame"].max()))
            rows = _boris_rows(bouts, float(tracks.fps), media, (last + 1) / tracks.fps)
            _write_boris(tmp["boris"], rows, stem, media)
    return {key: path for key, (path, _) in targets.items()}
