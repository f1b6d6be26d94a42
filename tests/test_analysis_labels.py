"""Reading behaviour labels: the real BORIS exports of ethome (30 fps, subject 'adult',
behaviour 'interact'; their tracks are not available), SimBA classifier columns, bouts and
per-frame CSVs, and every kind of bad input the issue lists, each a SkelmaeError that names the
file and the line."""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_skelmae import load_tracks
from napari_skelmae.analysis.labels import detect_label_format, load_labels
from napari_skelmae.errors import SkelmaeError, SkelmaeWarning

from .conftest import data_path

BORIS_FILES = [
    "e3v813a-20210610T120637-121213_reencode.csv",
    "e3v813a-20210610T121558-122141_reencode.csv",
    "e3v813a-20210610T122332-122642_reencode.csv",
    "e3v813a-20210610T122758-123309_reencode.csv",
    "e3v813a-20210610T123521-124106_reencode.csv",
]


def boris(name: str = BORIS_FILES[0]) -> Path:
    return data_path("ethome_examples", "boris", name)


@pytest.fixture(scope="module")
def openfield():
    """A real one-mouse recording at 30 fps (2330 frames), to check labels against; the
    BORIS files annotate other, longer videos of the same kind of experiment."""
    path = data_path("dlc_openfield", "predictions",
                     "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)
        return load_tracks(path)


# ------------------------------------------------------------------------------ BORIS
@pytest.mark.parametrize("name", BORIS_FILES)
def test_real_boris_exports(name):
    path = boris(name)
    events = pd.read_csv(path, skiprows=15)  # the layout the data README documents
    bouts = load_labels(path)
    assert detect_label_format(path) == "boris"
    assert bouts.attrs["fps"] == 30.0 and bouts.attrs["format"] == "boris"
    starts = events.loc[events["Status"] == "START", "Time"].to_numpy()
    stops = events.loc[events["Status"] == "STOP", "Time"].to_numpy()
    assert len(starts) == len(stops) == len(bouts)
    assert set(bouts["individual"]) == {"adult"} and set(bouts["behaviour"]) == {"interact"}
    # frame k is on screen during [k/30, (k+1)/30): a state covers the frames it overlaps
    # (half a millisecond, BORIS' rounding, of tolerance at the boundaries)
    np.testing.assert_array_equal(bouts["start_frame"], np.floor(starts * 30 + 0.015))
    np.testing.assert_array_equal(bouts["stop_frame"], np.ceil(stops * 30 - 0.015) - 1)
    assert (bouts["start_frame"].diff().dropna() > 0).all()


def test_boris_subject_mapping_and_fps():
    path = boris()
    assert set(load_labels(path, individual="mouse")["individual"]) == {"mouse"}
    assert set(load_labels(path, individual={"adult": "m1"})["individual"]) == {"m1"}
    at_25 = load_labels(path, fps=25)  # the user's fps wins over the file's
    starts = pd.read_csv(path, skiprows=15).query("Status == 'START'")["Time"].to_numpy()
    assert at_25.attrs["fps"] == 25
    np.testing.assert_array_equal(at_25["start_frame"], np.floor(starts * 25 + 0.0125))
    with pytest.raises(SkelmaeError, match="fps must be a positive number"):
        load_labels(path, fps=-1)


def test_boris_against_a_recording(openfield):
    path = boris()
    # the subject is 'adult', the track 'individual_0': say which is which
    with pytest.raises(SkelmaeError, match=r"line 17: unknown individual\(s\) \['adult'\]"):
        load_labels(path, tracks=openfield)
    # this video is 2330 frames; the annotation covers 336 s = 10080 frames
    with pytest.raises(SkelmaeError, match=r"frames .* are outside the recording's frames "
                       r"0-2329 \(wrong fps or wrong recording\?\)") as info:
        load_labels(path, tracks=openfield, individual="individual_0")
    # line 27 of the file: START at 80.100 s, the first bout after frame 2329 (77.6 s)
    assert str(path) in str(info.value) and "line 27: interact frames 2403-2442" in str(
        info.value)


def test_boris_bout_reaching_past_the_recording_is_clipped(openfield, tmp_path):
    lines = boris().read_text().splitlines(keepends=True)
    # keep the bouts up to line 26 and let the last one stop at 90 s instead of 63.225 s
    lines = lines[:25] + [lines[25].replace("63.225", "90.000", 1)]
    path = tmp_path / "clip.csv"
    path.write_text("".join(lines))
    with pytest.warns(SkelmaeWarning, match="1 bout.* clipped"):
        bouts = load_labels(path, tracks=openfield, individual="individual_0")
    assert bouts["start_frame"].iloc[-1] == 1768 and bouts["stop_frame"].iloc[-1] == 2329


def _edited(tmp_path: Path, edit) -> Path:
    lines = boris().read_text().splitlines(keepends=True)
    lines = edit(lines)
    path = tmp_path / "edited.csv"
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls[:17] + ls[18:], "line 18: interact of adult starts again before the START "
                                   "of line 17 stopped"),
    (lambda ls: ls[:16] + ls[17:], "line 17: STOP of interact of adult without a START"),
    (lambda ls: ls[:-1], "starts but never stops"),
    (lambda ls: ls[:16] + [ls[16].replace("17.075", "soon", 1)] + ls[17:],
     "line 17: time 'soon' is not a number"),
    (lambda ls: ls[:16] + [ls[16].replace(",START", ",BEGIN")] + ls[17:],
     "line 17: status 'BEGIN'"),
    (lambda ls: ls[:16], "a header but no events"),
])
def test_broken_boris_files(tmp_path, edit, message):
    path = _edited(tmp_path, edit)
    with pytest.raises(SkelmaeError, match=message) as info:
        load_labels(path)
    assert str(path) in str(info.value)


def test_boris_without_fps_uses_the_tracks(tmp_path, openfield):
    path = tmp_path / "nofps.csv"
    path.write_text("Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral "
                    "category,Comment,Status\n"
                    "1.0,v.avi,70,,,walk,,,START\n2.0,v.avi,70,,,walk,,,STOP\n"
                    "3.5,v.avi,70,,,rear,,,POINT\n")
    with pytest.raises(SkelmaeError, match="no frame rate: pass fps= or tracks="):
        load_labels(path, individual="m")
    bouts = load_labels(path, tracks=openfield)  # blank subject -> the only individual
    assert bouts.to_dict("records") == [
        {"individual": "individual_0", "behaviour": "walk", "start_frame": 30,
         "stop_frame": 59},
        {"individual": "individual_0", "behaviour": "rear", "start_frame": 105,
         "stop_frame": 105}]
    assert math.isclose(bouts.attrs["fps"], openfield.fps)
    with pytest.raises(SkelmaeError, match="do not say which individual"):
        load_labels(path, fps=30)


def test_boris_8_tabular_and_aggregated_exports(tmp_path):
    """BORIS >= 8 layouts (column names as BORIS' export code writes them): the frame numbers
    it records (Image index) are used when present."""
    tabular = tmp_path / "tabular.tsv"
    cols = ["Observation id", "Observation date", "Description", "Observation duration",
            "Observation type", "Source", "Time offset (s)", "Media duration (s)", "FPS",
            "Subject", "Behavior", "Behavioral category", "Behavior type", "Time",
            "Media file name", "Image index", "Image file path", "Comment"]
    rows = [
        ["o", "", "", "60", "Media file(s)", "player #1:v.mp4", "0", "60", "25.000",
         "male", "sing", "", "START", "1.000", "v.mp4", "25", "NA", ""],
        ["o", "", "", "60", "Media file(s)", "player #1:v.mp4", "0", "60", "25.000",
         "male", "sing", "", "STOP", "2.000", "v.mp4", "50", "NA", ""],
        ["o", "", "", "60", "Media file(s)", "player #1:v.mp4", "0", "60", "25.000",
         "female", "kick", "", "POINT", "3.100", "v.mp4", "", "NA", ""],
    ]
    tabular.write_text("\n".join("\t".join(r) for r in [cols] + rows) + "\n")
    got = load_labels(tabular).to_dict("records")
    assert got == [
        {"individual": "female", "behaviour": "kick", "start_frame": 77, "stop_frame": 77},
        {"individual": "male", "behaviour": "sing", "start_frame": 25, "stop_frame": 49}]
    aggregated = tmp_path / "aggregated.csv"
    cols = ["Observation id", "Observation date", "Description", "Observation type", "Source",
            "Time offset (s)", "Coding duration", "Media duration (s)", "FPS", "Subject",
            "Observation duration by subject by observation", "Behavior",
            "Behavioral category", "Behavior type", "Start (s)", "Stop (s)", "Duration (s)",
            "Media file name", "Image index start", "Image index stop", "Image path start",
            "Image path stop", "Comment start", "Comment stop"]
    rows = [["o", "", "", "Media file", "v.mp4", "0", "60", "60", "30.000", "m", "", "groom",
             "", "STATE", "10.000", "12.500", "2.5", "v.mp4", "NA", "NA", "NA", "NA", "", ""]]
    aggregated.write_text("\n".join(",".join(r) for r in [cols] + rows) + "\n")
    assert load_labels(aggregated).to_dict("records") == [
        {"individual": "m", "behaviour": "groom", "start_frame": 300, "stop_frame": 374}]


def test_boris_overlapping_behaviours(tmp_path):
    path = tmp_path / "overlap.csv"
    head = ("Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,"
            "Comment,Status\n")
    path.write_text(head + "1,v,9,10,a,walk,,,START\n2,v,9,10,a,groom,,,START\n"
                    "3,v,9,10,a,walk,,,STOP\n4,v,9,10,a,groom,,,STOP\n")
    with pytest.raises(SkelmaeError, match="overlapping bouts of a: walk 10-29 and groom "
                       "20-39.*allow_overlap=True"):
        load_labels(path)
    assert len(load_labels(path, allow_overlap=True)) == 2


def test_write_then_read_boris(tmp_path):
    """The BORIS writer of export.py and this reader agree on every frame."""
    export = pytest.importorskip("napari_skelmae.export")
    bouts = pd.DataFrame({"individual": ["a", "a", "b"], "behaviour": ["x", "y", "x"],
                          "start_frame": [0, 12, 7], "stop_frame": [11, 12, 400]})
    for fps in (25.0, 29.97, 30.0):
        path = export.write_boris_csv(bouts, tmp_path / f"b{fps}.csv", fps=fps)
        back = load_labels(path)
        assert back[bouts.columns.tolist()].to_dict("records") == bouts.to_dict("records")


# ------------------------------------------------------------------------- SimBA
@pytest.mark.parametrize("name", ["Tvideo_8_trim.csv", "Tvideo_25_trim.csv",
                                  "Tvideo_80_trim.csv"])
def test_simba_classifier_columns(name):
    """SimBA machine results: each ``*_prediction`` column is a behaviour. These are the
    outputs of SimBA's classifiers, not human labels."""
    path = data_path("simba_crim13_sample", name)
    table = pd.read_csv(path)
    bouts = load_labels(path, individual="Animal_1")
    assert detect_label_format(path) == "simba"
    labelled = np.zeros(len(table), int)
    for row in bouts.itertuples():
        column = table[f"{row.behaviour}_prediction"].to_numpy()
        assert (column[row.start_frame:row.stop_frame + 1] == 1).all()
        labelled[row.start_frame:row.stop_frame + 1] += 1
    positives = table[[c for c in table if c.endswith("_prediction")]].sum(axis=1).to_numpy()
    np.testing.assert_array_equal(labelled, positives)
    with pytest.raises(SkelmaeError, match="do not say which individual"):
        load_labels(path)


# ---------------------------------------------------------------------- bouts CSV
def test_bouts_csv(tmp_path):
    path = tmp_path / "bouts.csv"
    path.write_text("individual,Behavior,start_frame,stop_frame,probability\n"
                    "m,walk,10,20,0.9\nm,walk,18,25,0.8\nm,rest,30,31,0.7\n")
    bouts = load_labels(path)
    assert detect_label_format(path) == "bouts"
    # two walks sharing frames are one bout
    assert bouts.to_dict("records") == [
        {"individual": "m", "behaviour": "walk", "start_frame": 10, "stop_frame": 25},
        {"individual": "m", "behaviour": "rest", "start_frame": 30, "stop_frame": 31}]


@pytest.mark.parametrize("body, message", [
    ("individual,behaviour,start_frame,stop_frame\nm,walk,1,x\n",
     "line 2: stop_frame 'x' is not a whole frame number"),
    ("individual,behaviour,start_frame,stop_frame\nm,walk,1,5\nm,walk,9,3\n",
     "line 3: stop_frame 3 is before start_frame 9"),
    ("individual,behaviour,start_frame,stop_frame\nm,walk,1,5\nm,rest,5,6\n",
     "overlapping bouts of m: walk 1-5 and rest 5-6"),
    ("individual,behaviour,start_frame,stop_frame\nm,,1,5\n", "line 2: no behaviour"),
    ("individual,start_frame,stop_frame\nm,1,5\n", "needs a behaviour column"),
])
def test_bad_bouts_csv(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(SkelmaeError, match=message) as info:
        load_labels(path)
    assert str(path) in str(info.value)


def test_bouts_csv_against_tracks(tmp_path, openfield):
    path = tmp_path / "b.csv"
    path.write_text("individual,behaviour,start_frame,stop_frame\n"
                    "individual_0,walk,0,9\nmouse_2,walk,20,30\n")
    with pytest.raises(SkelmaeError, match=r"line 3: unknown individual\(s\) \['mouse_2'\]"):
        load_labels(path, tracks=openfield)
    path.write_text("individual,behaviour,start_frame,stop_frame\n"
                    "individual_0,walk,0,9\nindividual_0,walk,5000,5005\n")
    with pytest.raises(SkelmaeError, match="line 3: walk frames 5000-5005 are outside"):
        load_labels(path, tracks=openfield)


# -------------------------------------------------------------------- per-frame CSV
def test_per_frame_behaviour_column(tmp_path):
    path = tmp_path / "frames.csv"
    path.write_text("frame,individual,behaviour\n0,a,walk\n1,a,walk\n2,a,\n3,a,rest\n"
                    "5,a,rest\n0,b,rest\n1,b,rest\n")
    assert detect_label_format(path) == "frames"
    assert load_labels(path)[["individual", "behaviour", "start_frame",
                              "stop_frame"]].values.tolist() == [
        ["a", "walk", 0, 1], ["a", "rest", 3, 3], ["a", "rest", 5, 5], ["b", "rest", 0, 1]]


def test_per_frame_binary_columns(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_text("frame_index,walk,rest\n10,1,0\n11,1,0\n12,0,0\n13,0,1\n")
    bouts = load_labels(path, individual="m")
    assert bouts.to_dict("records") == [
        {"individual": "m", "behaviour": "walk", "start_frame": 10, "stop_frame": 11},
        {"individual": "m", "behaviour": "rest", "start_frame": 13, "stop_frame": 13}]
    assert len(load_labels(path, individual="m", behaviours=["rest"])) == 1


@pytest.mark.parametrize("body, message", [
    ("frame,walk,rest\n0,1,1\n", "line 2: frame 0 is both walk and rest"),
    ("frame,walk,speed\n0,1,3.2\n", "line 2: column 'speed' holds '3.2'"),
    ("frame,behaviour\n0,walk\n0,rest\n", "line 3: frame 0 of m appears twice"),
    ("frame,behaviour\n0.5,walk\n", "line 2: frame '0.5' is not a whole frame number"),
])
def test_bad_per_frame_csv(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(SkelmaeError, match=message):
        load_labels(path, individual="m")


# --------------------------------------------------------------------------- sniffing
def test_files_that_are_not_labels(tmp_path):
    with pytest.raises(SkelmaeError, match="no such file"):
        load_labels(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SkelmaeError, match="the file is empty"):
        load_labels(empty)
    pose = tmp_path / "pose.csv"  # a real DeepLabCut prediction table is not labels
    shutil.copy(data_path("dlc_vame_mouse", "cropped_video.csv"), pose)
    with pytest.raises(SkelmaeError, match="not a labels file this reader knows"):
        load_labels(pose)
    binary = tmp_path / "x.csv"
    binary.write_bytes(data_path("sleap_flies13", "demo-flies13-preds.slp").read_bytes()[:5000])
    with pytest.raises(SkelmaeError, match="binary file"):
        load_labels(binary)
    with pytest.raises(SkelmaeError, match="unknown labels format"):
        load_labels(boris(), format="excel")


def test_our_results_csv_reads_back_as_labels(tmp_path):
    """The per-frame results table this package writes (frame, individual, behaviour, ...)
    is a per-frame labels file: predictions corrected in a spreadsheet can come back."""
    results = pytest.importorskip("napari_skelmae.results")
    export = pytest.importorskip("napari_skelmae.export")
    from napari_skelmae.analysis.bouts import frames_to_bouts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)
        tracks = load_tracks(data_path("sleap_flies13", "demo-flies13-preds.slp"))
    codes = np.arange(tracks.n_frames)[:, None] // 50 % 3 - 1 + np.zeros((1, 2), int)
    table = results.results_table(tracks, behaviours=codes, behaviour_names=["a", "b"])
    paths = export.write_results(table, tracks, folder=tmp_path)
    bouts = load_labels(paths["csv"], tracks=tracks)
    expected = frames_to_bouts(codes, ["a", "b"], tracks.frame_index, tracks.individual_names)
    pd.testing.assert_frame_equal(bouts, expected, check_dtype=False)
