"""The `skelmae` command line: info on real recordings, clear one-line errors, screenshots."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_skelmae.cli import main

from .conftest import DATA


def test_info_prints_what_was_read(capsys):
    assert main(["info", str(DATA / "sleap_analysis_example/predictions.slp")]) == 0
    out = capsys.readouterr().out
    for expected in ("format            slp", "frames            3000", "2: track_0, track_1",
                     "13: head, thorax", "20190128_113421.120s.mp4"):
        assert expected in out, out


def test_info_json_matches_the_tracks():
    res = subprocess.run(
        [sys.executable, "-m", "napari_skelmae.cli", "info", "--json",
         str(DATA / "dlc_openfield/predictions"
             / "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5")],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["format"] == "dlc"
    assert info["frames"] == 2330
    assert info["keypoints"] == ["snout", "leftear", "rightear", "tailbase"]
    assert info["fps"] == pytest.approx(30.0, rel=1e-4) and info["fps_source"] == "video"
    assert info["video"].endswith("videos/m3v1mp4.mp4")
    assert info["has_confidence"] is True
    assert info["edges"] == []


def test_info_reports_missing_video_as_a_warning_not_an_error(capsys):
    path = (DATA / "dlc_bsoid_bottomup"
            / "raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.h5")
    assert main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    assert "video             not found" in captured.out
    assert "No video found" in captured.err


@pytest.mark.parametrize(
    "rel, says",
    [
        ("ethome_examples/boris/e3v813a-20210610T120637-121213_reencode.csv", "BORIS"),
        ("does/not/exist.slp", "no such file"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(capsys, rel, says):
    assert main(["info", str(DATA / rel)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skelmae: error:")
    assert str(DATA / rel) in err[0] and says in err[0]


def test_fps_override_and_merge_fragments(capsys):
    path = DATA / "sleap_centered_pair/centered_pair_predictions.slp"
    assert main(["info", "--json", "--fps", "15", "--merge-fragments", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["fps"] == 15.0
    assert len(info["individuals"]) == 5  # 27 fragmented ids, at most 5 present at once


@pytest.mark.gui
def test_view_screenshot_shows_the_sample(tmp_path):
    shot = tmp_path / "shot.png"
    assert main(["view", "--sample", "--frame", "100", "--size", "800x600",
                 "--screenshot", str(shot)]) == 0
    from imageio.v3 import imread  # napari depends on imageio

    img = imread(shot)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert np.asarray(img)[..., :3].std() > 5
