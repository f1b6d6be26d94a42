"""movement netCDF/xarray and NWB (ndx-pose) readers, checked against independent reads."""

from __future__ import annotations

import shutil
import sys
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest

from napari_skelmae.errors import SkelmaeError, TracksFileError
from napari_skelmae.io import load_tracks, movement, nwb
from napari_skelmae.tracks import PoseTracks

from .conftest import data_path

VAME_NC = ("dlc_vame_mouse", "cropped_video.nc")
VAME_CSV = ("dlc_vame_mouse", "cropped_video.csv")
DLC_PRED = ("dlc_openfield", "predictions", "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000")


@pytest.fixture(scope="module")
def flies_tracks() -> PoseTracks:
    """Real two-fly tracks (sleap-io's own reading) at sparse, unordered frames, with a skeleton."""
    import sleap_io as sio

    path = data_path("sleap_flies13", "demo-flies13-preds.slp")
    labels = sio.load_slp(str(path))
    skeleton = labels.skeletons[0]
    rows = np.array([700, 3, 0, 1349, 250, 251])
    return PoseTracks(
        positions=_sleap_points(labels, 1350)[rows, ..., :2],
        keypoint_names=skeleton.node_names,
        individual_names=[t.name for t in labels.tracks],
        edges=skeleton.edge_inds,
        frame_index=rows,
        fps=25,
        source_path=path,
        video_path=path.with_suffix(".mp4"),
        metadata={"format": "slp", "note": "subset"},
    )


def _sleap_points(labels, n_frames: int) -> np.ndarray:
    """(frames, tracks, nodes, x/y/score) from sleap-io's instances (``Labels.numpy`` is slow)."""
    out = np.full((n_frames, len(labels.tracks), len(labels.skeletons[0].nodes), 3), np.nan)
    for frame in labels.labeled_frames:
        for instance in frame.instances:
            track = labels.tracks.index(instance.track)
            out[frame.frame_idx, track, :, :2] = instance.numpy()
            if "score" in instance.points.dtype.names:
                out[frame.frame_idx, track, :, 2] = instance.points["score"]
    return out


# ---------------------------------------------------------------------- movement
def test_movement_netcdf_matches_the_dlc_csv_it_came_from():
    tracks = movement.read(data_path(*VAME_NC))
    csv = pd.read_csv(data_path(*VAME_CSV), header=[0, 1, 2], index_col=0)
    bodyparts = list(dict.fromkeys(csv.columns.get_level_values(1)))
    assert tracks.positions.shape == (750, 1, 6, 2) == (len(csv), 1, len(bodyparts), 2)
    assert list(tracks.keypoint_names) == bodyparts
    assert tracks.individual_names == ("individual_0",)
    assert tracks.fps == 30  # the file's attribute (its video says 25)
    np.testing.assert_array_equal(tracks.frame_index, csv.index.to_numpy())
    xy = csv.drop(columns="likelihood", level=2).to_numpy().reshape(750, 6, 2)
    likelihood = csv.xs("likelihood", level=2, axis=1).to_numpy()
    # movement parsed the CSV itself: equal to float32 precision, not bit for bit
    np.testing.assert_allclose(tracks.positions[:, 0], xy, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(tracks.confidence[:, 0], likelihood.astype(np.float32))
    assert tracks.source_path == data_path(*VAME_NC)
    assert tracks.metadata["source_software"] == "DeepLabCut"


def test_load_tracks_sniffs_movement_and_finds_the_video():
    tracks = load_tracks(data_path(*VAME_NC))
    assert tracks.metadata["format"] == "movement"
    assert tracks.video_path == data_path("dlc_vame_mouse", "cropped_video.mp4")


def test_dataset_uses_movement_singular_layout(flies_tracks):
    ds = flies_tracks.to_movement()
    assert ds["position"].dims == ("time", "space", "keypoint", "individual")
    assert ds["confidence"].dims == ("time", "keypoint", "individual")
    assert ds.sizes == {"time": 6, "space": 2, "keypoint": 13, "individual": 2}
    assert ds.attrs["ds_type"] == "poses" and ds.attrs["time_unit"] == "seconds"
    assert ds.attrs["fps"] == 25 and ds.attrs["source_software"] == "SLEAP"
    np.testing.assert_allclose(ds["time"].values, [28, 0.12, 0, 53.96, 10, 10.04])
    head = flies_tracks.keypoint_names.index("head")
    np.testing.assert_array_equal(
        ds["position"].sel(keypoint="head", individual=flies_tracks.individual_names[1]).values,
        flies_tracks.positions[:, 1, head, :],
    )


def test_dataset_round_trip_is_exact(flies_tracks):
    back = PoseTracks.from_movement(flies_tracks.to_movement())
    assert back.equals(flies_tracks, check_paths=True)
    assert back.edge_names == flies_tracks.edge_names and len(back.edges) == 12
    assert back.metadata == flies_tracks.metadata


def test_round_trip_without_fps_and_in_3d():
    h5 = pd.read_hdf(data_path("dlc_reaching_kinematics", "reachingDEMO_3D.h5"))
    xyz = h5.to_numpy()[:50].reshape(50, 1, -1, 3)
    tracks = PoseTracks(positions=xyz, frame_index=np.arange(100, 150))
    ds = tracks.to_movement()
    assert ds.attrs["time_unit"] == "frames" and "fps" not in ds.attrs
    assert ds["space"].values.tolist() == ["x", "y", "z"]
    assert movement.dataset_to_tracks(ds).equals(tracks)


def test_netcdf_file_round_trip_is_atomic(tmp_path, flies_tracks):
    out = tmp_path / "flies.nc"
    out.write_text("an older file to replace")
    movement.write(flies_tracks, out)
    assert [p.name for p in tmp_path.iterdir()] == ["flies.nc"]  # no temp file left
    back = movement.read(out)
    assert back.equals(flies_tracks, check_paths=False)
    assert back.source_path == out and back.video_path == flies_tracks.video_path
    assert back.metadata["source_file"] == str(flies_tracks.source_path)


def test_older_plural_dims_and_time_in_frames():
    import xarray as xr

    with xr.open_dataset(data_path(*VAME_NC), engine="h5netcdf") as ds:
        ds = ds.load()
    assert "keypoints" in ds.dims  # the file really uses the old names
    frames = ds.assign_coords(time=np.arange(ds.sizes["time"]) + 10)
    del frames.attrs["time_unit"], frames.attrs["fps"]
    tracks = movement.dataset_to_tracks(frames)
    assert tracks.fps is None
    np.testing.assert_array_equal(tracks.frame_index, np.arange(10, 760))
    assert movement.dataset_to_tracks(ds, fps=60).frame_index[-1] == 1498  # 24.97 s at 60 fps
    with pytest.raises(SkelmaeError, match="same video frame; is the fps right"):
        movement.dataset_to_tracks(ds, fps=15)  # samples 1/30 s apart cannot be 1/15 s frames


def test_netcdf_without_position_is_a_clear_error(tmp_path):
    import xarray as xr

    with xr.open_dataset(data_path(*VAME_NC), engine="h5netcdf") as ds:
        bad = ds.drop_vars("position").load()
    path = tmp_path / "no_position.nc"
    bad.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(TracksFileError, match=r"no_position\.nc.*no 'position' variable"):
        movement.read(path)


def test_damaged_netcdf_is_a_tracks_file_error(tmp_path):
    data = data_path(*VAME_NC).read_bytes()
    path = tmp_path / "cut.nc"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(TracksFileError, match=r"cut\.nc"):
        movement.read(path)


def test_missing_xarray_names_the_extra(monkeypatch, flies_tracks):
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(SkelmaeError, match=r"pip install napari-skelmae\[movement\]"):
        movement.tracks_to_dataset(flies_tracks)


# ---------------------------------------------------------------------- NWB
def test_old_ndx_pose_nwb_equals_the_dlc_h5_of_the_same_predictions():
    tracks = nwb.read(data_path(*DLC_PRED[:-1], DLC_PRED[-1] + ".nwb"))
    h5 = pd.read_hdf(data_path(*DLC_PRED[:-1], DLC_PRED[-1] + ".h5"))
    bodyparts = list(dict.fromkeys(h5.columns.get_level_values("bodyparts")))
    assert len(h5) == 2330 and bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    assert tracks.positions.shape == (2330, 1, 4, 2)
    assert list(tracks.keypoint_names) == bodyparts  # "ind1_snout" -> "snout"
    assert tracks.individual_names == ("ind1",)
    np.testing.assert_array_equal(tracks.frame_index, h5.index.to_numpy())
    for k, part in enumerate(bodyparts):
        columns = h5.xs(part, level="bodyparts", axis=1).droplevel(0, axis=1)
        np.testing.assert_array_equal(
            tracks.positions[:, 0, k], columns[["x", "y"]].to_numpy().astype(np.float32)
        )
        np.testing.assert_array_equal(
            tracks.confidence[:, 0, k], columns["likelihood"].to_numpy().astype(np.float32)
        )
    # its timestamps are frame numbers 0, 1, 2... labelled seconds: the fps is not 1
    assert tracks.fps is None and tracks.metadata["timestamps_are_frames"]
    assert tracks.metadata["source_software"] == "DeepLabCut"


def test_nwb_fps_argument_keeps_frames():
    path = data_path(*DLC_PRED[:-1], DLC_PRED[-1] + ".nwb")
    tracks = nwb.read(path, fps=30)
    assert tracks.fps == 30
    np.testing.assert_array_equal(tracks.frame_index, np.arange(2330))


@pytest.fixture(scope="module")
def sleap_nwb(tmp_path_factory):
    """clip.predictions.slp written by sleap-io's NWB writer (newer ndx-pose layout: one
    PoseEstimation per track, a linked Skeleton, series of different lengths)."""
    import sleap_io as sio

    labels = sio.load_slp(str(data_path("sleap_clip", "clip.predictions.slp")))
    path = tmp_path_factory.mktemp("nwb") / "clip.nwb"
    with warnings.catch_warnings():  # pynwb/ndx-pose deprecations inside sleap-io's writer
        warnings.simplefilter("ignore", DeprecationWarning)
        sio.save_nwb(labels, str(path), nwb_format="predictions")
    return path, labels


def test_new_ndx_pose_layout_with_two_individuals(sleap_nwb):
    path, labels = sleap_nwb
    with h5py.File(path, "r") as f:  # the layout this test is about
        module = f["processing/SLEAP_VIDEO_000_clip"]
        assert sorted(module) == ["track=female", "track=male"]
        assert len(module["track=male/head/data"]) != len(module["track=male/thorax/data"])
    tracks = nwb.read(path)
    expected = _sleap_points(labels, 1500)  # (frames, 2 tracks, 2 nodes, x/y/score)
    assert tracks.individual_names == tuple(t.name for t in labels.tracks) == ("female", "male")
    assert list(tracks.keypoint_names) == labels.skeletons[0].node_names
    assert tracks.edge_names == labels.skeletons[0].edge_names
    np.testing.assert_array_equal(tracks.frame_index, np.arange(1500))
    np.testing.assert_array_equal(
        tracks.positions, expected[..., :2].astype(np.float32), strict=True
    )
    present = ~tracks.missing  # sleap-io scores missing points 0; we say NaN
    assert 0 < (~present).sum() < present.sum()
    np.testing.assert_array_equal(
        tracks.confidence[present], expected[..., 2].astype(np.float32)[present]
    )
    assert tracks.video_path == data_path("sleap_clip", "clip.mp4")


def test_nwb_without_pose_estimation_is_refused(tmp_path):
    path = tmp_path / "no_pose.nwb"
    shutil.copy(data_path(*DLC_PRED[:-1], DLC_PRED[-1] + ".nwb"), path)
    path.chmod(0o644)
    with h5py.File(path, "a") as f:
        del f["processing/behavior/PoseEstimation"]
    with pytest.raises(TracksFileError, match=r"no_pose\.nwb.*no ndx-pose PoseEstimation data"):
        nwb.read(path)


def test_damaged_nwb_is_a_tracks_file_error(tmp_path):
    data = data_path(*DLC_PRED[:-1], DLC_PRED[-1] + ".nwb").read_bytes()
    path = tmp_path / "cut.nwb"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TracksFileError, match=r"cut\.nwb"):
        nwb.read(path)
