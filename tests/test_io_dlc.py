"""DeepLabCut-family readers/writer (DLC, maDLC, Lightning Pose, SimBA) on the real files.

Shapes come from ../shared/data/README.md; values are checked against an independent
``pandas.read_csv(header=[0, 1, 2])`` / ``pandas.read_hdf`` read of the same file.
"""

from __future__ import annotations

import gzip
import re
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from napari_skelmae import load_tracks
from napari_skelmae.errors import SkelmaeError, SkelmaeWarning, TracksFileError
from napari_skelmae.io import dlc, simba
from napari_skelmae.tracks import PoseTracks

from .conftest import data_path

OPENFIELD_LABELS = ("dlc_openfield", "labeled-data", "m4s1", "CollectedData_Pranav")
REACHING_LABELS = ("dlc_reaching", "labeled-data", "reachingvideo1", "CollectedData_Mackenzie")
ZEBRAFISH = ("zebrafish_headrestrained_dlc", "example_headrestrained_DLC_250fps.csv.gz")

# (path parts, frames, keypoints, space, dlc_kind) from the data README
DLC_FILES = [
    (("dlc_openfield", "predictions", "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5"),
     2330, 4, 2, "predictions"),
    ((*OPENFIELD_LABELS[:-1], OPENFIELD_LABELS[-1] + ".h5"), 116, 4, 2, "labelled"),
    ((*OPENFIELD_LABELS[:-1], OPENFIELD_LABELS[-1] + ".csv"), 116, 4, 2, "labelled"),
    (("ethome_examples", "openfield_dlc_inference_example.csv"), 2330, 4, 2, "predictions"),
    (("dlc_vame_mouse", "cropped_video.csv"), 750, 6, 2, "predictions"),
    (("dlc_bsoid_bottomup", "raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.h5"),
     7200, 6, 2, "predictions"),
    ((*REACHING_LABELS[:-1], REACHING_LABELS[-1] + ".csv"), 55, 5, 2, "labelled"),
    ((*REACHING_LABELS[:-1], REACHING_LABELS[-1] + ".h5"), 55, 5, 2, "labelled"),
    (("dlc_reaching_kinematics", "reachingDEMO_2D.h5"), 800, 33, 2, "predictions"),
    (("dlc_reaching_kinematics", "reachingDEMO_3D.h5"), 800, 33, 3, "predictions"),
    (("lp_mirror_mouse", "CollectedData.csv"), 90, 17, 2, "labelled"),
    (ZEBRAFISH, 69997, 13, 2, "predictions"),
]
SIMBA_FILES = ["Tvideo_8_trim.csv", "Tvideo_25_trim.csv", "Tvideo_80_trim.csv"]


def _pandas_table(path) -> pd.DataFrame:
    """The file read the plain pandas way, independent of our parser."""
    if path.suffix == ".h5":
        return pd.read_hdf(path)
    return pd.read_csv(path, header=[0, 1, 2], index_col=0)


def _expected_arrays(df: pd.DataFrame, space: int):
    """(positions, confidence, bodyparts) from a single-animal pandas DLC table."""
    bodyparts = list(dict.fromkeys(df.columns.get_level_values(1)))
    coords = list(df.columns.get_level_values(2))
    values = df.to_numpy(dtype=np.float64)
    pos = np.full((len(df), 1, len(bodyparts), space), np.nan)
    conf = np.full((len(df), 1, len(bodyparts)), np.nan)
    for j, (bp, coord) in enumerate(zip(df.columns.get_level_values(1), coords, strict=True)):
        k = bodyparts.index(bp)
        if coord == "likelihood":
            conf[:, 0, k] = values[:, j]
        else:
            pos[:, 0, k, "xyz".index(coord)] = values[:, j]
    missing = np.isnan(pos).any(axis=-1)  # PoseTracks: a point is missing as a whole
    pos[missing] = np.nan
    conf[missing] = np.nan
    return pos.astype(np.float32), conf.astype(np.float32), bodyparts


# ====================================================================== real files
@pytest.mark.parametrize("parts,frames,keypoints,space,kind", DLC_FILES,
                         ids=[p[0][-1] for p in DLC_FILES])
def test_dlc_files_load_with_readme_shapes_and_pandas_values(parts, frames, keypoints, space,
                                                             kind):
    path = data_path(*parts)
    tracks = load_tracks(path, video=False)
    assert tracks.metadata["format"] == "dlc"
    assert tracks.metadata["dlc_kind"] == kind
    assert tracks.positions.shape == (frames, 1, keypoints, space)
    assert tracks.fps is None  # DLC files hold no frame rate

    df = _pandas_table(path)
    pos, conf, bodyparts = _expected_arrays(df, space)
    assert list(tracks.keypoint_names) == bodyparts  # file order, not sorted
    np.testing.assert_array_equal(tracks.positions, pos)
    np.testing.assert_array_equal(tracks.confidence, conf)
    if kind == "predictions":
        np.testing.assert_array_equal(tracks.frame_index, df.index.to_numpy())
    else:
        numbers = [int(re.search(r"img0*(\d+)\.png$", name).group(1)) for name in df.index]
        np.testing.assert_array_equal(tracks.frame_index, numbers)
        assert tracks.metadata["image_files"] == list(df.index)
    assert tracks.metadata["scorer"] == df.columns.get_level_values(0)[0]

    direct = dlc.read(path)
    assert direct.equals(tracks, check_paths=False)


def test_labelled_csv_and_h5_agree():
    for parts in (OPENFIELD_LABELS, REACHING_LABELS):
        from_csv = dlc.read(data_path(*parts[:-1], parts[-1] + ".csv"))
        from_h5 = dlc.read(data_path(*parts[:-1], parts[-1] + ".h5"))
        assert from_csv.equals(from_h5, check_paths=False)
        assert from_csv.metadata["image_files"] == from_h5.metadata["image_files"]


def test_reaching_skeleton_comes_from_config_yaml():
    path = data_path(*REACHING_LABELS[:-1], REACHING_LABELS[-1] + ".csv")
    tracks = dlc.read(path)
    config = data_path("dlc_reaching", "config.yaml")
    skeleton = yaml.safe_load(config.read_text())["skeleton"]
    assert [list(e) for e in tracks.edge_names] == skeleton
    assert tracks.metadata["dlc_config"] == str(config.resolve())


def test_openfield_config_found_but_skeleton_empty():
    tracks = dlc.read(data_path("dlc_openfield", "predictions",
                                "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5"))
    assert tracks.edges.shape == (0, 2)
    assert tracks.metadata["dlc_config"].endswith("dlc_openfield/config.yaml")


def test_lightning_pose_missing_fraction_matches_pandas():
    path = data_path("lp_mirror_mouse", "CollectedData.csv")
    tracks = dlc.read(path)
    df = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    x_missing = df.xs("x", axis=1, level=2).isna().to_numpy()
    assert tracks.missing_fraction == pytest.approx(x_missing.mean())
    assert tracks.missing_fraction == pytest.approx(0.088, abs=0.002)
    assert np.isnan(tracks.confidence).all()  # labelled data: no likelihood


def test_zebrafish_csv_gz_keeps_its_1_based_index():
    """(Its load time is benchmarks/bench_load.py's, not a test's.)"""
    path = data_path(*ZEBRAFISH)
    tracks = dlc.read(path)
    with gzip.open(path, "rt") as f:
        lines = [f.readline() for _ in range(4)]
    assert lines[3].split(",")[0] == "1"
    assert tracks.frame_index[0] == 1 and tracks.frame_index[-1] == 69997
    assert tracks.keypoint_names[:3] == ("head_rostral", "head_caudal", "tail0")
    assert tracks.keypoint_names[-1] == "tail10"


@pytest.mark.parametrize("name", SIMBA_FILES)
def test_simba_files_pose_columns_only(name):
    path = data_path("simba_crim13_sample", name)
    tracks = load_tracks(path, video=False)
    assert tracks.metadata["format"] == "simba"
    assert tracks.positions.shape == (101, 2, 8, 2)
    df = pd.read_csv(path)
    x_columns = [c for c in df.columns if c.endswith("_1_x")]
    assert list(tracks.keypoint_names) == [c[: -len("_1_x")] for c in x_columns]
    assert tracks.individual_names == ("Animal_1", "Animal_2")
    for i, animal in enumerate(("1", "2")):
        for k, part in enumerate(tracks.keypoint_names):
            np.testing.assert_array_equal(
                tracks.positions[:, i, k, 0], df[f"{part}_{animal}_x"].to_numpy(np.float32))
            np.testing.assert_array_equal(
                tracks.positions[:, i, k, 1], df[f"{part}_{animal}_y"].to_numpy(np.float32))
            np.testing.assert_array_equal(
                tracks.confidence[:, i, k], df[f"{part}_{animal}_p"].to_numpy(np.float32))
    np.testing.assert_array_equal(tracks.frame_index, df["scorer"].to_numpy())
    predictions = [c for c in df.columns if c.endswith("_prediction")]
    assert len(predictions) == 11
    assert tracks.metadata["simba_prediction_columns"] == predictions
    assert simba.read(path).equals(tracks, check_paths=False)


# ====================================================================== layouts
def _write_text(path, text: str):
    path.write_text(text.strip() + "\n")
    return path


def test_multi_animal_csv_with_single_individual(tmp_path):
    path = _write_text(tmp_path / "ma.csv", """
scorer,S,S,S,S,S,S,S,S,S,S,S,S,S,S,S
individuals,mus1,mus1,mus1,mus1,mus1,mus1,mus2,mus2,mus2,mus2,mus2,mus2,single,single,single
bodyparts,nose,nose,nose,tail,tail,tail,nose,nose,nose,tail,tail,tail,box,box,box
coords,x,y,likelihood,x,y,likelihood,x,y,likelihood,x,y,likelihood,x,y,likelihood
10,1,2,0.5,3,4,0.6,5,6,0.7,7,8,0.8,9,10,0.9
11,,,,13,14,0.1,15,16,0.2,17,18,0.3,19,20,0.4
""")
    tracks = load_tracks(path, video=False)
    assert tracks.individual_names == ("mus1", "mus2", "single")
    assert tracks.keypoint_names == ("nose", "tail", "box")
    assert tracks.metadata["dlc_layout"] == "multi-animal"
    np.testing.assert_array_equal(tracks.frame_index, [10, 11])
    np.testing.assert_array_equal(tracks.positions[0, 1, 1], [7, 8])
    np.testing.assert_array_equal(tracks.positions[1, 2, 2], [19, 20])
    assert np.isnan(tracks.positions[:, 2, :2]).all()  # 'single' has no nose/tail
    assert np.isnan(tracks.positions[:, :2, 2]).all()  # animals have no 'box'
    assert np.isnan(tracks.positions[1, 0, 0]).all() and np.isnan(tracks.confidence[1, 0, 0])
    np.testing.assert_allclose(tracks.confidence[0, :, :2].ravel()[:4], [0.5, 0.6, 0.7, 0.8])


def test_newer_dlc_csv_with_three_index_columns_and_index_name_row(tmp_path):
    reference = dlc.read(data_path(*REACHING_LABELS[:-1], REACHING_LABELS[-1] + ".csv"))
    df = pd.read_hdf(data_path(*REACHING_LABELS[:-1], REACHING_LABELS[-1] + ".h5"))
    split = df.copy()
    split.index = pd.MultiIndex.from_tuples([tuple(s.split("/")) for s in df.index])
    split.to_csv(tmp_path / "three_index_columns.csv")
    named = df.copy()
    named.index.name = "frame"
    named.to_csv(tmp_path / "index_name_row.csv")
    for name in ("three_index_columns.csv", "index_name_row.csv"):
        tracks = dlc.read(tmp_path / name)  # no config.yaml in tmp_path: no skeleton
        assert tracks.equals(reference.replace(edges=None), check_paths=False), name


def test_labelled_names_that_repeat_fall_back_to_row_order(tmp_path):
    path = _write_text(tmp_path / "CollectedData_x.csv", """
scorer,me,me
bodyparts,a,a
coords,x,y
labeled-data/v1/img001.png,1,2
labeled-data/v2/img001.png,3,4
labeled-data/v2/frame.png,5,6
""")
    tracks = dlc.read(path)
    np.testing.assert_array_equal(tracks.frame_index, [0, 1, 2])
    assert tracks.metadata["frame_index_source"].startswith("row order")


def test_skeleton_pairs_with_unknown_bodyparts_are_skipped_with_warning(tmp_path):
    project = tmp_path / "project"
    folder = project / "labeled-data" / "video1"
    folder.mkdir(parents=True)
    (project / "config.yaml").write_text(
        "bodyparts: [a, b, c]\nskeleton:\n- [a, b]\n- [b, ghost]\n- [c, a]\n")
    path = _write_text(folder / "CollectedData_me.csv", """
scorer,me,me,me,me,me,me
bodyparts,a,a,b,b,c,c
coords,x,y,x,y,x,y
labeled-data/video1/img7.png,1,2,3,4,5,6
""")
    with pytest.warns(SkelmaeWarning, match="ghost"):
        tracks = dlc.read(path)
    assert tracks.edge_names == [("a", "b"), ("c", "a")]
    assert tracks.frame_index.tolist() == [7]


# ====================================================================== writing
def _synthetic(n_ind: int, space: int, with_confidence: bool) -> PoseTracks:
    rng = np.random.default_rng(n_ind * 10 + space)
    pos = rng.uniform(0, 500, (6, n_ind, 3, space)).astype(np.float32)
    pos[1, 0, 2] = np.nan
    pos[4, -1, 0] = np.nan
    conf = rng.uniform(0, 1, (6, n_ind, 3)).astype(np.float32) if with_confidence else None
    if conf is not None:
        conf[2, 0, 1] = np.nan  # unknown score of a present point
    names = [dlc.SINGLE_ANIMAL_NAME] if n_ind == 1 else [f"mouse{i}" for i in range(n_ind)]
    return PoseTracks(positions=pos, confidence=conf, keypoint_names=["snout", "ear", "tail"],
                      individual_names=names, frame_index=[40, 3, 7, 8, 100, 0],
                      metadata={"scorer": "tester"})


@pytest.mark.parametrize("suffix", [".csv", ".h5", ".csv.gz"])
@pytest.mark.parametrize("n_ind,space,with_confidence",
                         [(1, 2, True), (2, 2, True), (1, 3, False), (2, 3, True), (2, 2, False)])
def test_write_read_round_trip(tmp_path, suffix, n_ind, space, with_confidence):
    original = _synthetic(n_ind, space, with_confidence)
    path = dlc.write(original, tmp_path / f"tracks{suffix}")
    back = dlc.read(path)
    assert back.equals(original, check_paths=False)
    assert load_tracks(path, video=False).equals(original, check_paths=False)
    assert back.metadata["scorer"] == "tester"
    assert back.metadata["dlc_layout"] == ("multi-animal" if n_ind > 1 else "single-animal")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    if suffix == ".h5":
        df = pd.read_hdf(path, key="df_with_missing")
        assert df.columns.nlevels == (4 if n_ind > 1 else 3)
        assert ("likelihood" in df.columns.get_level_values(-1)) == with_confidence


def test_real_labelled_data_round_trips_with_image_paths(tmp_path):
    original = dlc.read(data_path(*OPENFIELD_LABELS[:-1], OPENFIELD_LABELS[-1] + ".csv"))
    back = dlc.read(dlc.write(original, tmp_path / "CollectedData_copy.h5"))
    assert back.equals(original, check_paths=False)
    assert back.metadata["dlc_kind"] == "labelled"
    assert list(pd.read_hdf(tmp_path / "CollectedData_copy.h5").index) == \
        original.metadata["image_files"]
    reordered = original.sorted_by_frame().sel(frames=original.frame_index[::-1])
    again = dlc.read(dlc.write(reordered, tmp_path / "reordered.csv"))
    assert again.metadata["dlc_kind"] == "predictions"  # stale image list is not written
    assert again.equals(reordered, check_paths=False)


def test_real_3d_file_round_trips_through_csv(tmp_path):
    original = dlc.read(data_path("dlc_reaching_kinematics", "reachingDEMO_3D.h5"))
    back = dlc.read(dlc.write(original, tmp_path / "reaching3d.csv"))
    assert back.equals(original, check_paths=False)


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    tracks = _synthetic(2, 2, True)
    target = dlc.write(tracks, tmp_path / "keep.csv")
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(SkelmaeError, match="keep.csv"):
        dlc.write(tracks, target)
    with pytest.raises(SkelmaeError, match="new.csv"):
        dlc.write(tracks, tmp_path / "new.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]
    assert target.read_bytes() == before
    with pytest.raises(SkelmaeError, match=r"\.txt"):
        dlc.write(tracks, tmp_path / "tracks.txt")


# ====================================================================== broken input
GOOD_HEADER = "scorer,s,s,s\nbodyparts,a,a,a\ncoords,x,y,likelihood\n"
BROKEN_CSV = {
    "empty.csv": ("", "empty"),
    "blank_lines.csv": ("\n\n\n", "no rows"),
    "header_only.csv": (GOOD_HEADER, "no data rows"),
    "no_bodyparts_row.csv": ("scorer,s,s,s\ncoords,x,y,likelihood\n0,1,2,0.5\n", "bodyparts"),
    "bad_coords.csv": ("scorer,s,s,s\nbodyparts,a,a,a\ncoords,u,v,w\n0,1,2,0.5\n", "coords"),
    "no_y.csv": ("scorer,s,s,s\nbodyparts,a,a,a\ncoords,x,z,likelihood\n0,1,2,0.5\n", "x or y"),
    "non_numeric.csv": (GOOD_HEADER + "0,1,2,0.5\n1,1,oops,0.5\n", "row 2"),
    "all_nan.csv": (GOOD_HEADER + "0,,,\n1,nan,nan,\n", "every point is missing"),
    "ragged.csv": (GOOD_HEADER + "0,1,2,0.5,9,9\n", "columns"),
    "not_scorer.csv": ("frame,x,y\n0,1,2\n", "scorer"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_CSV))
def test_broken_csv_raises_tracks_file_error_naming_the_file(tmp_path, name):
    text, problem = BROKEN_CSV[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TracksFileError, match=re.escape(name)) as excinfo:
        dlc.read(path)
    assert problem in str(excinfo.value)
    with pytest.raises(TracksFileError, match=re.escape(name)):
        load_tracks(path, video=False)


def test_non_numeric_cell_message_says_where(tmp_path):
    path = tmp_path / "where.csv"
    path.write_text(GOOD_HEADER + "0,1,2,0.5\n1,1,oops,0.5\n")
    with pytest.raises(TracksFileError) as excinfo:
        dlc.read(path)
    message = str(excinfo.value)
    assert "'oops'" in message and "line 5" in message and "'y'" in message


def _broken_h5(tmp_path, name):
    path = tmp_path / name
    if name == "unrelated_pandas.h5":
        pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_hdf(path, key="df_with_missing")
    elif name == "series.h5":
        pd.Series([1.0, 2.0]).to_hdf(path, key="data")
    elif name == "truncated.h5":
        source = data_path("dlc_bsoid_bottomup",
                           "raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.h5")
        path.write_bytes(source.read_bytes()[:5000])
    elif name == "all_nan.h5":
        columns = pd.MultiIndex.from_product([["s"], ["a"], ["x", "y", "likelihood"]],
                                             names=["scorer", "bodyparts", "coords"])
        pd.DataFrame(np.full((3, 3), np.nan), columns=columns).to_hdf(
            path, key="df_with_missing", format="table")
    return path


@pytest.mark.parametrize("name,problem", [
    ("unrelated_pandas.h5", "not a DeepLabCut pose table"),
    ("series.h5", "not a DataFrame"),
    ("truncated.h5", "truncated"),
    ("all_nan.h5", "every point is missing"),
])
def test_broken_h5_raises_tracks_file_error_naming_the_file(tmp_path, name, problem):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTables warns about the Series' object layout
        path = _broken_h5(tmp_path, name)
    with pytest.raises(TracksFileError, match=re.escape(name)) as excinfo:
        dlc.read(path)
    assert problem in str(excinfo.value)
    with pytest.raises(TracksFileError, match=re.escape(name)):
        load_tracks(path, video=False)


def test_hdf5_without_pandas_table(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["values"] = np.zeros(3)
    with pytest.raises(TracksFileError, match="plain.h5.*no pandas table"):
        dlc.read(path)


@pytest.mark.parametrize("text,problem", [
    ("scorer,a,b,c\n0,1,2,3\n", "no pose columns"),
    ("scorer,nose_1_x,nose_1_y,nose_1_p\n0,1,2,0.5\n1,1,x2,0.5\n", "non-numeric"),
    ("scorer,nose_1_x,nose_1_p\n0,1,0.5\n", "_x and _y"),
    ("scorer,nose_1_x,nose_1_y\n", "no data rows"),
])
def test_broken_simba_raises_tracks_file_error(tmp_path, text, problem):
    path = tmp_path / "simba_broken.csv"
    path.write_text(text)
    with pytest.raises(TracksFileError, match="simba_broken.csv") as excinfo:
        simba.read(path)
    assert problem in str(excinfo.value)
