"""Every file in ../shared/data either loads or is refused with a clear message, and a corpus
of broken files each raises the plugin's own error naming the file."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_skelmae import SkelmaeError, TracksFileError, detect_format, load_tracks

from .conftest import DATA

# Files that are not pose tracks and must be refused (by suffix or content).
NOT_TRACKS_SUFFIXES = {".png", ".mp4", ".yaml", ".md", ".tsv"}


def _all_shared_files() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.is_file())


def _is_expected_refusal(p: Path) -> bool:
    return p.suffix.lower() in NOT_TRACKS_SUFFIXES or "boris" in p.parts


# (relative path, format, frames, individuals, keypoints, space) from ../shared/data/README.md
EXPECTED = [
    ("sleap_flies13/demo-flies13-preds.slp", "slp", 1350, 2, 13, 2),
    ("sleap_analysis_example/predictions.slp", "slp", 3000, 2, 13, 2),
    ("sleap_analysis_example/predictions.analysis.h5", "sleap_analysis", 3000, 2, 13, 2),
    ("sleap_centered_pair/centered_pair_predictions.slp", "slp", 1100, 27, 24, 2),
    ("sleap_centered_pair/centered_pair_standard.analysis.h5", "sleap_analysis", 1100, 27, 24, 2),
    ("dlc_openfield/predictions/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5",
     "dlc", 2330, 1, 4, 2),
    ("dlc_openfield/labeled-data/m4s1/CollectedData_Pranav.h5", "dlc", 116, 1, 4, 2),
    ("dlc_openfield/labeled-data/m4s1/CollectedData_Pranav.csv", "dlc", 116, 1, 4, 2),
    ("ethome_examples/openfield_dlc_inference_example.csv", "dlc", 2330, 1, 4, 2),
    ("dlc_vame_mouse/cropped_video.csv", "dlc", 750, 1, 6, 2),
    ("dlc_bsoid_bottomup/raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.h5",
     "dlc", 7200, 1, 6, 2),
    ("dlc_reaching/labeled-data/reachingvideo1/CollectedData_Mackenzie.h5", "dlc", 55, 1, 5, 2),
    ("dlc_reaching_kinematics/reachingDEMO_2D.h5", "dlc", 800, 1, 33, 2),
    ("dlc_reaching_kinematics/reachingDEMO_3D.h5", "dlc", 800, 1, 33, 3),
    ("lp_mirror_mouse/CollectedData.csv", "dlc", 90, 1, 17, 2),
    ("simba_crim13_sample/Tvideo_8_trim.csv", "simba", 101, 2, 8, 2),
    ("zebrafish_headrestrained_dlc/example_headrestrained_DLC_250fps.csv.gz",
     "dlc", 69997, 1, 13, 2),
    ("dlc_vame_mouse/cropped_video.nc", "movement", 750, 1, 6, 2),
    ("jabs_mouse/example_pose_est_v5.h5", "jabs", 250, None, 12, 2),
    ("dlc_openfield/predictions/m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.nwb",
     "nwb", 2330, 1, 4, 2),
]


@pytest.mark.parametrize("rel, fmt, frames, individuals, keypoints, space", EXPECTED,
                         ids=[e[0].split("/")[0] + ":" + Path(e[0]).name[:24] for e in EXPECTED])
def test_shared_recordings_load_with_readme_shapes(rel, fmt, frames, individuals, keypoints,
                                                    space):
    path = DATA / rel
    assert detect_format(path) == fmt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = load_tracks(path)
    assert t.metadata["format"] == fmt
    assert t.n_frames == frames
    if individuals is not None:
        assert t.n_individuals == individuals
    assert t.n_keypoints == keypoints
    assert t.n_space == space
    assert t.source_path == path
    assert 0.0 <= t.missing_fraction < 1.0


def test_every_shared_file_loads_or_is_refused_clearly():
    loaded, refused = [], []
    for p in _all_shared_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load_tracks(p, video=False)
            loaded.append(p)
        except SkelmaeError as e:
            assert str(p) in str(e), f"error for {p} does not name the file: {e}"
            refused.append(p)
        # any other exception type fails the test by propagating
    unexpected_refusals = [p for p in refused if not _is_expected_refusal(p)]
    unexpected_loads = [p for p in loaded if _is_expected_refusal(p)]
    assert not unexpected_refusals, unexpected_refusals
    assert not unexpected_loads, unexpected_loads
    assert len(loaded) >= len(EXPECTED)


# ---------------------------------------------------------------- generic broken input
def _foreign_hdf5(p: Path) -> Path:
    with h5py.File(p, "w") as f:
        f["images"] = np.zeros((4, 8, 8), np.uint8)
        f.attrs["creator"] = "some microscope"
    return p


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _head(rel: str, n: int) -> bytes:
    return (DATA / rel).read_bytes()[:n]


BROKEN = {
    "missing path": lambda d: d / "does_not_exist.slp",
    "a directory": lambda d: d,
    "empty file": lambda d: _write(d / "empty.slp", b""),
    "empty csv": lambda d: _write(d / "empty.csv", ""),
    "wrong extension": lambda d: _write(d / "notes.txt", "hello\n"),
    "text posing as slp": lambda d: _write(d / "fake.slp", "not hdf5"),
    "text posing as h5": lambda d: _write(d / "fake.h5", "x,y\n1,2\n"),
    "plain csv": lambda d: _write(d / "xy.csv", "x,y\n1,2\n3,4\n"),
    "HDF5 of another program": lambda d: _foreign_hdf5(d / "microscope.h5"),
    "truncated HDF5": lambda d: _write(
        d / "cut.h5", _head("sleap_analysis_example/predictions.analysis.h5", 4096)),
    "truncated slp": lambda d: _write(
        d / "cut.slp", _head("sleap_flies13/demo-flies13-preds.slp", 50_000)),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_input_raises_our_error_naming_the_file(case, tmp_path):
    path = BROKEN[case](tmp_path)
    with pytest.raises(TracksFileError) as info:
        load_tracks(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "rel, says",
    [
        ("dlc_openfield/labeled-data/m4s1/img0000.png", "image"),
        ("sleap_flies13/demo-flies13-preds.mp4", "video"),
        ("ethome_examples/boris/e3v813a-20210610T120637-121213_reencode.csv", "BORIS"),
        ("dlc_openfield/config.yaml", "unknown file type"),
    ],
)
def test_non_track_files_say_what_they_are(rel, says):
    with pytest.raises(TracksFileError, match=says):
        load_tracks(DATA / rel)
