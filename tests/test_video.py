"""VideoReader (lazy, seeking, damaged files), find_video and napari Image layers on videos."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest

from napari_skelmae.errors import SkelmaeWarning
from napari_skelmae.video import VideoError, VideoReader, find_video, video_fps

from .conftest import data_path

FLIES_MP4 = ("sleap_flies13", "demo-flies13-preds.mp4")
# Frames on both sides of keyframes (this video has one every 250 frames), in jumping order.
PROBE_FRAMES = [1200, 3, 251, 249, 250, 700, 701, 1349, 0, 4]


@pytest.fixture(scope="module")
def flies_reference() -> dict[int, np.ndarray]:
    """Probe frames decoded independently: plain PyAV, start to end, no seeking."""
    wanted = set(PROBE_FRAMES) | {10, 1000}
    frames = {}
    with av.open(str(data_path(*FLIES_MP4))) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in wanted:
                frames[number] = frame.to_ndarray(format="rgb24")
    assert number == 1349  # the README's 1350 frames really decode
    return frames


@pytest.fixture(scope="module")
def flies() -> VideoReader:
    return VideoReader(data_path(*FLIES_MP4))


def test_shape_fps_dtype_match_the_recording(flies):
    assert flies.shape == (1350, 1024, 1024, 3)
    assert len(flies) == 1350
    assert flies.dtype == np.uint8 and flies.ndim == 4
    assert flies.size == 1350 * 1024 * 1024 * 3
    assert flies.fps == 25
    assert video_fps(flies.path) == 25


def test_random_access_equals_sequential_decoding(flies_reference):
    reader = VideoReader(data_path(*FLIES_MP4), cache_size=2)  # force real seeks
    for i in PROBE_FRAMES:
        np.testing.assert_array_equal(reader[i], flies_reference[i], err_msg=f"frame {i}")


def test_distant_frames_differ_and_negative_indices_wrap(flies, flies_reference):
    assert not np.array_equal(flies[10], flies[1000])
    np.testing.assert_array_equal(flies[-1], flies_reference[1349])
    np.testing.assert_array_equal(flies[-1350], flies_reference[0])
    for bad in (1350, -1351):
        with pytest.raises(IndexError, match="demo-flies13-preds.mp4"):
            flies[bad]


def test_numpy_style_indexing(flies, flies_reference):
    assert flies[(5, slice(0, 10))].shape == (10, 1024, 3)
    assert flies[3, 100, 200].tolist() == flies_reference[3][100, 200].tolist()
    stacked = flies[[250, 3]]
    assert stacked.shape == (2, 1024, 1024, 3)
    np.testing.assert_array_equal(stacked[0], flies_reference[250])
    np.testing.assert_array_equal(stacked[1], flies_reference[3])
    np.testing.assert_array_equal(flies[0:5:4], np.stack([flies_reference[0], flies_reference[4]]))
    assert flies[1349:1351].shape == (1, 1024, 1024, 3)  # slices clip like numpy
    assert flies[np.array([[0, 3], [4, 3]])].shape == (2, 2, 1024, 1024, 3)
    assert flies[-1:, ::2, ::2].shape == (1, 512, 512, 3)


def test_whole_video_array_is_refused_when_too_large(flies):
    reader = VideoReader(flies.path)
    reader.max_array_bytes = 4 * 1024 * 1024 * 3  # four frames
    with pytest.raises(VideoError, match="demo-flies13-preds.mp4"):
        np.asarray(reader)
    assert np.asarray(reader[0:4]).shape == (4, 1024, 1024, 3)


def test_concurrent_reads_from_threads(flies_reference):
    reader = VideoReader(data_path(*FLIES_MP4), cache_size=1)
    order = [1000, 10, 251, 700, 3, 1349] * 2
    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(reader.__getitem__, order))
    for i, frame in zip(order, frames, strict=True):
        np.testing.assert_array_equal(frame, flies_reference[i], err_msg=f"frame {i}")


def test_vame_video_is_one_frame_shorter_than_its_tracks():
    """dlc_vame_mouse: 750 pose rows (CSV), but the mp4 declares and decodes 749 frames."""
    reader = VideoReader(data_path("dlc_vame_mouse", "cropped_video.mp4"))
    with av.open(str(reader.path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == 749
    assert len(reader) == 749 == reader.decodable_frames
    assert reader.fps == 25  # the tracks' netCDF says 30: the files disagree
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkelmaeWarning)  # no black frame inside the video
        assert reader[748].max() > 0
    with pytest.raises(IndexError, match="749 frames"):
        reader[749]


def test_truncated_video_with_index_first_gives_black_frames(tmp_path):
    """centered_pair's mp4 has its frame index before the data: cut in half, it still opens,
    declares 1100 frames, decodes the first ones and shows the rest black."""
    source = data_path("sleap_centered_pair", "centered_pair_low_quality.mp4")
    cut = tmp_path / "cut.mp4"
    data = source.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    reader = VideoReader(cut)
    whole = VideoReader(source)
    assert len(reader) == 1100
    last_good = reader.decodable_frames - 1
    assert 0 < last_good < 1099
    for i in (0, 300, last_good):
        np.testing.assert_array_equal(reader[i], whole[i], err_msg=f"frame {i}")
    with pytest.warns(SkelmaeWarning, match="cut.mp4") as caught:
        assert reader[last_good + 1].max() == 0
        assert reader[1000].max() == 0
        assert reader[-1].max() == 0
    assert len(caught) == 1  # warned once, not per frame


@pytest.mark.parametrize("damage", ["truncated", "text", "empty", "missing"])
def test_unreadable_video_raises_video_error_naming_the_file(tmp_path, damage):
    bad = tmp_path / f"{damage}.mp4"
    if damage == "truncated":  # flies13 keeps its index at the end: cut, it is unusable
        data = data_path(*FLIES_MP4).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "text":
        bad.write_text("frame,x,y\n0,1.5,2.5\n" * 20)
    elif damage == "empty":
        bad.write_bytes(b"")
    with pytest.raises(VideoError, match=f"{damage}.mp4"):
        VideoReader(bad)
    assert video_fps(bad) is None


def test_video_fps_reads_container_metadata():
    assert video_fps(data_path("dlc_openfield", "videos", "m3v1mp4.mp4")) == pytest.approx(30, 1e-3)
    assert video_fps(data_path("lp_mirror_mouse", "videos", "test_vid.mp4")) == 250


# ---------------------------------------------------------------------- find_video
@pytest.mark.parametrize(
    ("tracks", "stored", "expected"),
    [
        ("sleap_flies13/demo-flies13-preds.slp", None, "sleap_flies13/demo-flies13-preds.mp4"),
        # the .slp stores a bare file name, resolved beside the tracks file
        ("sleap_analysis_example/predictions.slp", "20190128_113421.120s.mp4",
         "sleap_analysis_example/20190128_113421.120s.mp4"),
        # paths of other machines: only the file name is reused
        ("sleap_centered_pair/centered_pair_predictions.slp",
         "tests/data/videos/centered_pair_low_quality.mp4",
         "sleap_centered_pair/centered_pair_low_quality.mp4"),
        ("sleap_dance/dance.mp4.labels.slp",
         "/home/talmolab/projects/sleap_hackathon/sleap/tests/data/videos/dance.mp4",
         "sleap_dance/dance.mp4"),
        ("sleap_clip/clip.predictions.slp", r"C:\Users\lab\videos\clip.mp4", "sleap_clip/clip.mp4"),
        # no stored path: SLEAP's "<video>.labels.slp" and same-stem naming
        ("sleap_dance/dance.mp4.labels.slp", None, "sleap_dance/dance.mp4"),
        ("sleap_clip/clip.predictions.slp", None, "sleap_clip/clip.mp4"),
        ("dlc_openfield/predictions/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5", None,
         "dlc_openfield/videos/m3v1mp4.mp4"),
        ("dlc_openfield/predictions/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.nwb",
         "fake_path", "dlc_openfield/videos/m3v1mp4.mp4"),
        ("dlc_vame_mouse/cropped_video.csv", None, "dlc_vame_mouse/cropped_video.mp4"),
        ("dlc_vame_mouse/cropped_video.nc", None, "dlc_vame_mouse/cropped_video.mp4"),
    ],
)
def test_find_video_on_real_folders(tracks, stored, expected):
    found = find_video(data_path(*tracks.split("/")), stored=stored)
    assert found is not None
    assert found.resolve() == data_path(*expected.split("/")).resolve()


@pytest.mark.parametrize(
    "tracks",
    [
        # labels of PNG frames; videos/test_vid.mp4 is not their source (data README)
        ("lp_mirror_mouse", "CollectedData.csv"),
        # DLC labelled-data of video m4s1, whose video is not in the project
        ("dlc_openfield", "labeled-data", "m4s1", "CollectedData_Pranav.h5"),
        ("dlc_bsoid_bottomup", "raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.h5"),
        ("sleap_analysis_example", "predictions.analysis.h5"),
    ],
)
def test_find_video_returns_none_without_a_matching_video(tracks):
    assert find_video(data_path(*tracks)) is None


def test_find_video_dlc_naming_and_case_insensitive_suffix(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "predictions").mkdir()
    video = tmp_path / "videos" / "Mouse1.MP4"
    shutil.copy(data_path("dlc_vame_mouse", "cropped_video.mp4"), video)
    tracks = tmp_path / "predictions" / "Mouse1DLC_resnet50_testMay1shuffle1_500_filtered.h5"
    assert find_video(tracks) == video
    assert find_video(tmp_path / "predictions" / "Mouse2DLC_resnet50_x.h5") is None


# ---------------------------------------------------------------------- napari
def test_napari_image_layer_slices_lazily(flies_reference):
    """napari's own slicing (ViewerModel: no Qt) reads the right frames through the reader."""
    from napari.components import ViewerModel

    reader = VideoReader(data_path(*FLIES_MP4))
    viewer = ViewerModel()
    layer = viewer.add_image(reader, rgb=True)
    assert layer.data is reader and layer.rgb
    for frame in (1000, 3):
        viewer.dims.set_point(0, frame)
        np.testing.assert_array_equal(layer._slice.image.raw, flies_reference[frame])


_NO_DISPLAY = (
    sys.platform.startswith("linux")
    and not os.environ.get("DISPLAY")
    and not os.environ.get("WAYLAND_DISPLAY")
    and os.environ.get("QT_QPA_PLATFORM") != "offscreen"
)


@pytest.mark.gui
@pytest.mark.skipif(_NO_DISPLAY, reason="needs a display: run under xvfb-run -a")
def test_napari_viewer_shows_video_frames(make_napari_viewer, flies_reference):
    viewer = make_napari_viewer()
    layer = viewer.add_image(VideoReader(data_path(*FLIES_MP4)), rgb=True, name="video")
    viewer.dims.set_point(0, 1000)
    np.testing.assert_array_equal(layer._slice.image.raw, flies_reference[1000])
    viewer.dims.set_point(0, 10)
    np.testing.assert_array_equal(layer._slice.image.raw, flies_reference[10])
