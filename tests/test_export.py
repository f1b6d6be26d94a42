"""Result files written beside the video and read back: parquet/CSV tables, SLEAP events in a
copy of the .slp (sleap-io, SLP format 2.6), BORIS event tables; unwritable folders and
failures halfway leave no partial files.

Recordings are copied into tmp_path first, so nothing is ever written into ../shared/data.
Labels are honest rules on the real positions (thorax / snout speed terciles, short bouts
merged into their neighbours); embeddings are egocentric keypoint coordinates (keypoints minus
a reference keypoint), which have the shape and the NaNs of real embeddings.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
import sleap_io as sio

from napari_skelmae import export
from napari_skelmae.analysis.bouts import frames_to_bouts, remove_short_bouts
from napari_skelmae.errors import SkelmaeError, SkelmaeWarning
from napari_skelmae.export import (
    BORIS_COLUMNS,
    export_all,
    output_location,
    read_results,
    write_boris_csv,
    write_results,
    write_sleap_events,
)
from napari_skelmae.io import load_tracks
from napari_skelmae.io.sleap import read_slp
from napari_skelmae.results import results_from_table, results_table

from .conftest import data_path

NAMES = ["still", "walk", "run"]
FLIES = ("demo-flies13-preds.slp", "demo-flies13-preds.mp4")


def copy_flies(folder):
    for name in FLIES:
        shutil.copy(data_path("sleap_flies13", name), folder / name)
    return folder / FLIES[0]


def speed_codes(tracks, keypoint: str) -> np.ndarray:
    """Speed terciles of one keypoint (-1 where unknown), bouts under 5 frames merged."""
    xy = tracks.positions[:, :, tracks.keypoint_names.index(keypoint)]
    step = np.linalg.norm(np.diff(xy, axis=0, prepend=xy[:1]), axis=-1)
    step[0] = np.nan
    cuts = np.nanquantile(step, [1 / 3, 2 / 3])
    codes = np.where(np.isnan(step), -1, np.digitize(step, cuts))
    return remove_short_bouts(codes, tracks.frame_index, 5)


def egocentric(tracks, keypoint: str) -> np.ndarray:
    ref = tracks.positions[:, :, [tracks.keypoint_names.index(keypoint)]]
    return (tracks.positions - ref).reshape(tracks.n_frames, tracks.n_individuals, -1)


def probabilities(codes) -> np.ndarray:
    logits = -np.abs(np.arange(3)[None, None, :] - codes[..., None]).astype(np.float32)
    p = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    p[codes < 0] = np.nan
    return p.astype(np.float32)


def flies_results(tracks):
    codes = speed_codes(tracks, "thorax")
    table = results_table(tracks, embeddings=egocentric(tracks, "thorax"), behaviours=codes,
                          behaviour_names=NAMES, probabilities=probabilities(codes),
                          clusters=codes)
    return table, codes


@pytest.fixture(scope="module")
def flies_tracks(tmp_path_factory):
    return load_tracks(copy_flies(tmp_path_factory.mktemp("flies")))


@pytest.fixture()
def flies(flies_tracks, tmp_path):
    """(tracks, table, codes) of the two-fly recording copied into tmp_path with its video
    (read once per module; each test gets its own copy of the files)."""
    source = copy_flies(tmp_path)
    tracks = flies_tracks.replace(source_path=source, video_path=tmp_path / FLIES[1])
    table, codes = flies_results(tracks)
    return tracks, table, codes


def parse_boris(path, fps):
    """Bouts from a BORIS event export, paired START/STOP per subject and behaviour, reading
    a state as the frames whose display interval [k/fps, (k+1)/fps) it overlaps."""
    events = pd.read_csv(path, skiprows=15)
    open_, bouts = {}, []
    for row in events.itertuples(index=False):
        key = (row.Subject, row.Behavior)
        if row.Status == "START":
            assert key not in open_
            open_[key] = int(np.floor(row.Time * fps + 1e-9))
        else:
            start = open_.pop(key)
            stop = max(start, int(np.ceil(row.Time * fps - 1e-9)) - 1)
            bouts.append({"individual": row.Subject, "behaviour": row.Behavior,
                          "start_frame": start, "stop_frame": stop})
    assert not open_
    return (pd.DataFrame(bouts).sort_values(["individual", "start_frame"], kind="stable")
            .reset_index(drop=True))


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------- tables
def test_tables_written_beside_the_video_and_read_back(flies, tmp_path):
    tracks, table, codes = flies
    paths = write_results(table, tracks)
    assert paths == {"parquet": tmp_path / "demo-flies13-preds.skelmae.parquet",
                     "csv": tmp_path / "demo-flies13-preds.skelmae.csv"}
    assert files_in(tmp_path) == sorted([*FLIES, *(p.name for p in paths.values())])

    back = read_results(paths["parquet"])
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    meta = back.attrs["skelmae"]
    assert meta["behaviour_names"] == NAMES and meta["fps"] == 25.0
    assert meta["package_version"] and meta["embedding_dim"] == 26

    csv = read_results(paths["csv"])
    assert len(csv) == len(table)
    expected, got = results_from_table(table, tracks), results_from_table(csv, tracks)
    np.testing.assert_array_equal(got.embedding_values, expected.embedding_values)
    np.testing.assert_array_equal(got.probabilities, expected.probabilities)
    np.testing.assert_array_equal(got.behaviours, codes)
    assert got.behaviour_names == NAMES  # from the p_<name> columns' order
    np.testing.assert_array_equal(csv["time"], table["time"])


def test_reading_something_else_is_a_clear_error(tmp_path):
    boris = next(data_path("ethome_examples", "boris").glob("*.csv"))
    with pytest.raises(SkelmaeError, match=f"'{boris}': not a napari-skelmae results table"):
        read_results(boris)
    broken = tmp_path / "cut.skelmae.parquet"
    broken.write_bytes(b"PAR1 and then nothing")
    with pytest.raises(SkelmaeError, match="not a readable parquet file"):
        read_results(broken)
    with pytest.raises(SkelmaeError, match="no such file"):
        read_results(tmp_path / "none.skelmae.csv")


def test_folder_and_stem_choices(tmp_path):
    """No video: beside the tracks file, named after it; or in a chosen folder and stem."""
    dlc = tmp_path / "m3v1mp4DLC_resnet50.h5"
    source = next(data_path("dlc_openfield", "predictions").glob("*.h5"))
    shutil.copy(source, dlc)
    tracks = load_tracks(dlc, video=False)
    assert output_location(tracks) == (tmp_path, "m3v1mp4DLC_resnet50")
    table = results_table(tracks, behaviours=speed_codes(tracks, "snout"),
                          behaviour_names=NAMES)
    paths = write_results(table, tracks)
    assert paths["csv"] == tmp_path / "m3v1mp4DLC_resnet50.skelmae.csv"
    chosen = tmp_path / "out"
    chosen.mkdir()
    paths = write_results(table, tracks, folder=chosen, stem="session1")
    assert files_in(chosen) == ["session1.skelmae.csv", "session1.skelmae.parquet"]
    pd.testing.assert_frame_equal(read_results(paths["parquet"]), table)


def test_unwritable_folder_is_a_clear_error(flies, tmp_path, monkeypatch):
    tracks, table, _ = flies
    a_file = tmp_path / FLIES[1]
    with pytest.raises(SkelmaeError, match=f"'{a_file}': it is not a folder"):
        write_results(table, tracks, folder=a_file)
    with pytest.raises(SkelmaeError, match="does not exist"):
        write_results(table, tracks, folder=tmp_path / "missing")

    # The OS refusing new files (read-only mount, permissions; tests may run as root, whom
    # permission bits do not stop, so the refusal is the OS call's)
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    folder = tmp_path / "locked"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(SkelmaeError, match=f"folder '{folder}': it is not writable"):
        write_results(table, tracks, folder=folder)
    assert files_in(folder) == []


def test_a_folder_that_refuses_even_root(flies):
    """/sys refuses new files whatever the user (sysfs); skipped where it does not."""
    tracks, table, _ = flies
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass
    else:  # pragma: no cover - an unusual system
        import os

        os.close(fd)
        os.unlink(probe)
        pytest.skip("/sys accepts files here")
    with pytest.raises(SkelmaeError, match="folder '/sys': it is not writable"):
        write_results(table, tracks, folder="/sys")


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt])
def test_no_partial_files_when_a_write_fails_halfway(flies, tmp_path, monkeypatch, failure):
    tracks, table, _ = flies
    old = write_results(table.iloc[:10], tracks)  # an earlier export stays as it was
    before = {p: digest(p) for p in old.values()}

    real_to_csv = pd.DataFrame.to_csv

    def half_then_fail(self, path, *args, **kwargs):
        real_to_csv(self.iloc[: len(self) // 2], path, *args, **kwargs)
        raise failure

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    expected = SkelmaeError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        write_results(table, tracks)
    assert {p: digest(p) for p in old.values()} == before
    assert files_in(tmp_path) == sorted([*FLIES, *(p.name for p in old.values())])  # no temps


# --------------------------------------------------------------------- SLEAP events
def test_sleap_events_in_a_copy_of_the_slp(flies, tmp_path):
    tracks, table, codes = flies
    source = tmp_path / FLIES[0]
    original = digest(source)
    bouts = results_from_table(table, tracks).bouts()
    assert len(bouts) > 20 and bouts["probability"].notna().all()
    path = write_sleap_events(tracks, bouts)
    assert path == tmp_path / "demo-flies13-preds.skelmae.slp"
    assert digest(source) == original  # the original is never touched

    import h5py

    with h5py.File(path, "r") as f:
        assert float(f["metadata"].attrs["format_id"]) >= 2.6
    labels = sio.load_slp(str(path), open_videos=False)
    assert [t.name for t in labels.tracks] == ["track_0", "track_1"]
    assert all(isinstance(ev, sio.PredictedEvent) for ev in labels.events)
    assert all(ev.video is labels.videos[0] for ev in labels.events)
    got = pd.DataFrame([{"individual": ev.subject.name, "behaviour": ev.type.name,
                         "start_frame": ev.start_frame, "stop_frame": ev.end_frame,
                         "probability": ev.score} for ev in labels.events])
    got = got.sort_values(["individual", "start_frame"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, bouts, check_dtype=False)
    assert sorted(et.name for et in labels.event_types) == sorted(set(bouts["behaviour"]))
    # the poses are the original's
    assert read_slp(path).equals(read_slp(source), check_paths=False)
    # the per-frame labels come back from the events
    from napari_skelmae.analysis.bouts import bouts_to_frames

    back, names = bouts_to_frames(got, tracks.frame_index, tracks.individual_names, NAMES)
    np.testing.assert_array_equal(back, codes)


def test_reexport_replaces_our_events_and_keeps_others(flies, tmp_path):
    tracks, table, _ = flies
    bouts = results_from_table(table, tracks).bouts()
    first = write_sleap_events(tracks, bouts, predicted=False)
    labels = sio.load_slp(str(first), open_videos=False)
    assert all(isinstance(ev, sio.UserEvent) for ev in labels.events)
    # someone adds an event of their own, then the tracks of that file are exported again
    labels.events.append(sio.UserEvent(type="courtship", video=labels.videos[0],
                                       start_frame=3, end_frame=9, source="annotator"))
    sio.save_slp(labels, str(first), verbose=False)
    again = load_tracks(first)
    (tmp_path / "sub").mkdir()
    path = write_sleap_events(again, bouts.iloc[:5], tmp_path / "sub" / "again.slp")
    copy = sio.load_slp(str(path), open_videos=False)
    assert sorted(ev.source for ev in copy.events) == ["annotator"] + ["napari-skelmae"] * 5
    # written elsewhere, the copy names its video so that it still finds it
    assert copy.videos[0].filename == (tmp_path / FLIES[1]).resolve().as_posix()
    with pytest.raises(SkelmaeError, match="tracks file itself"):
        write_sleap_events(again, bouts, first)


def test_dlc_tracks_get_a_new_slp_with_events(tmp_path):
    """A DeepLabCut user gets a .slp (skeleton, track, predicted instances) with events."""
    (tmp_path / "predictions").mkdir()
    (tmp_path / "videos").mkdir()
    h5 = next(data_path("dlc_openfield", "predictions").glob("*.h5"))
    shutil.copy(h5, tmp_path / "predictions" / h5.name)
    shutil.copy(data_path("dlc_openfield", "videos", "m3v1mp4.mp4"),
                tmp_path / "videos" / "m3v1mp4.mp4")
    tracks = load_tracks(tmp_path / "predictions" / h5.name)
    assert tracks.video_path == tmp_path / "videos" / "m3v1mp4.mp4"
    codes = speed_codes(tracks, "snout")
    bouts = frames_to_bouts(codes, NAMES, tracks.frame_index, tracks.individual_names)
    path = write_sleap_events(tracks, bouts)
    assert path == tmp_path / "videos" / "m3v1mp4.skelmae.slp"

    back = read_slp(path)
    present = ~tracks.missing.all(axis=2)[:, 0]
    np.testing.assert_array_equal(back.frame_index, tracks.frame_index[present])
    np.testing.assert_array_equal(back.positions, tracks.positions[present])
    np.testing.assert_array_equal(back.confidence, tracks.confidence[present])
    assert back.keypoint_names == tracks.keypoint_names
    assert back.individual_names == tracks.individual_names
    assert back.fps == tracks.fps  # the video's, kept in the SLEAP video metadata
    labels = sio.load_slp(str(path), open_videos=False)
    assert len(labels.events) == len(bouts)
    assert [(ev.type.name, ev.start_frame, ev.end_frame) for ev in labels.events] == list(
        bouts[["behaviour", "start_frame", "stop_frame"]].itertuples(index=False, name=None))
    assert labels.videos[0].filename == (tmp_path / "videos" / "m3v1mp4.mp4").as_posix()


def test_sleap_events_refuse_what_sleap_cannot_hold(flies, tmp_path):
    tracks, table, _ = flies
    bouts = results_from_table(table, tracks).bouts()
    flat = tracks.replace(source_path=None, video_path=None)
    with pytest.raises(SkelmaeError, match="no video"):
        write_sleap_events(flat, bouts, tmp_path / "x.slp")
    deep = flat.replace(positions=np.concatenate(
        [tracks.positions, tracks.positions[..., :1]], axis=-1), video_path=tracks.video_path)
    with pytest.raises(SkelmaeError, match="3-D"):
        write_sleap_events(deep, bouts, tmp_path / "x.slp")
    with pytest.raises(SkelmaeError, match="unknown individual"):
        write_sleap_events(tracks, bouts.assign(individual="nobody"), tmp_path / "x.slp")
    assert not (tmp_path / "x.slp").exists()


# ---------------------------------------------------------------------------- BORIS
def test_boris_table_has_boris_layout_and_round_trips(flies, tmp_path):
    tracks, table, _ = flies
    bouts = results_from_table(table, tracks).bouts()
    path = write_boris_csv(bouts, tmp_path / "events.csv", fps=tracks.fps,
                           media_path=tracks.video_path)
    real = next(data_path("ethome_examples", "boris").glob("*.csv"))
    ours, theirs = pd.read_csv(path, skiprows=15), pd.read_csv(real, skiprows=15)
    assert list(ours.columns) == list(theirs.columns) == BORIS_COLUMNS
    header = [line.split(",")[0] for line in path.read_text().splitlines()[:15]]
    assert header == [line.split(",")[0] for line in real.read_text().splitlines()[:15]]
    assert path.read_bytes().count(b"\r\n") == len(ours) + 16  # line ends like BORIS'
    assert len(ours) == 2 * len(bouts) and set(ours["Status"]) == {"START", "STOP"}
    assert ours["Time"].is_monotonic_increasing
    assert (ours["FPS"] == 25.0).all() and (ours["Media file path"] == str(tracks.video_path)).all()
    assert ours["Comment"].dropna().str.startswith("probability ").all()
    pd.testing.assert_frame_equal(parse_boris(path, tracks.fps),
                                  bouts.drop(columns="probability"))


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97, 250.0, 1200.0])
def test_boris_times_read_back_as_the_same_frames(flies, tmp_path, fps):
    """Millisecond times are not whole frames at most frame rates: they still read back."""
    tracks, table, _ = flies
    bouts = results_from_table(table, tracks).bouts().drop(columns="probability")
    path = write_boris_csv(bouts, tmp_path / "events.csv", fps=fps)
    pd.testing.assert_frame_equal(parse_boris(path, fps), bouts)
    durations = pd.read_csv(path, skiprows=15).groupby("Status")["Time"].sum()
    frames = (bouts["stop_frame"] - bouts["start_frame"] + 1).sum()
    assert abs((durations["STOP"] - durations["START"]) - frames / fps) <= 2 * len(bouts) * (
        1e-3 if fps < 1000 else 1e-4)


def test_own_boris_parser_reads_real_boris_exports():
    """The test's parser pairs every START of a real BORIS export with a STOP."""
    for real in data_path("ethome_examples", "boris").glob("*.csv"):
        bouts = parse_boris(real, 30.0)
        assert len(bouts) == len(pd.read_csv(real, skiprows=15)) // 2
        assert (bouts["stop_frame"] >= bouts["start_frame"]).all()


@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_boris_round_trip_through_the_labels_reader(flies, tmp_path, fps):
    labels = pytest.importorskip("napari_skelmae.analysis.labels")
    tracks, table, _ = flies
    bouts = results_from_table(table, tracks).bouts().drop(columns="probability")
    path = write_boris_csv(bouts, tmp_path / "events.csv", fps=fps,
                           media_path=tracks.video_path)
    back = labels.load_labels(path, tracks=tracks.replace(fps=fps))
    assert back.attrs["format"] == "boris" and back.attrs["fps"] == fps
    pd.testing.assert_frame_equal(back, bouts)


def test_boris_bad_input(flies, tmp_path):
    tracks, table, _ = flies
    bouts = results_from_table(table, tracks).bouts()
    with pytest.raises(SkelmaeError, match="frame rate"):
        write_boris_csv(bouts, tmp_path / "e.csv", fps=None)
    twice = pd.concat([bouts.iloc[:1], bouts.iloc[:1].assign(stop_frame=bouts.iloc[0, 3] + 3)])
    with pytest.raises(SkelmaeError, match="overlap"):
        write_boris_csv(twice, tmp_path / "e.csv", fps=25)
    assert not (tmp_path / "e.csv").exists()


# -------------------------------------------------------------------------- all files
def test_export_all_writes_every_file_together(flies, tmp_path):
    tracks, table, codes = flies
    paths = export_all(tracks, table)
    stem = tmp_path / "demo-flies13-preds"
    assert paths == {"parquet": stem.with_name(stem.name + ".skelmae.parquet"),
                     "csv": stem.with_name(stem.name + ".skelmae.csv"),
                     "slp": stem.with_name(stem.name + ".skelmae.slp"),
                     "boris": stem.with_name(stem.name + ".skelmae.boris.csv")}
    bouts = frames_to_bouts(codes, NAMES, tracks.frame_index, tracks.individual_names)
    pd.testing.assert_frame_equal(parse_boris(paths["boris"], 25.0), bouts)
    assert len(sio.load_slp(str(paths["slp"]), open_videos=False).events) == len(bouts)
    pd.testing.assert_frame_equal(read_results(paths["parquet"]), table)


def test_export_all_leaves_nothing_when_one_file_fails(flies, tmp_path, monkeypatch):
    tracks, table, _ = flies

    def broken_save(labels, path):
        path.write_bytes(b"\x89HDF half a file")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(export, "_save_slp", broken_save)
    with pytest.raises(SkelmaeError, match="Input/output error"):
        export_all(tracks, table)
    assert files_in(tmp_path) == sorted(FLIES)


def test_export_all_without_fps_or_behaviours(flies, tmp_path):
    tracks, _, codes = flies
    no_fps = tracks.replace(fps=None)
    table = results_table(no_fps, behaviours=codes, behaviour_names=NAMES)
    with pytest.warns(SkelmaeWarning, match="frame rate"):
        paths = export_all(no_fps, table)
    assert sorted(paths) == ["csv", "parquet", "slp"]
    only_embeddings = results_table(tracks, embeddings=egocentric(tracks, "thorax"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = export_all(tracks, only_embeddings, folder=tmp_path, stem="emb")
    assert sorted(paths) == ["csv", "parquet"]


def test_written_files_get_ordinary_permissions(tmp_path):
    """mkstemp's private 0600 must not survive into the results (colleagues read them)."""
    import os
    import stat

    from napari_skelmae.io._common import _UMASK, atomic_output

    target = tmp_path / "x.csv"
    with atomic_output(target, "test file") as tmp:
        tmp.write_text("a\n")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_UMASK
