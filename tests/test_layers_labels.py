"""Behaviour labels on the layers: every point and skeleton segment gets its row's label for its
animal, colours follow the shared palette, and the layers still round-trip to the tracks."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Layer

from napari_skelmae import SkelmaeError, layers_to_tracks, sample_tracks
from napari_skelmae.napari.layers import NO_LABEL, label_layers, tracks_to_layers
from napari_skelmae.plots import category_colors


@pytest.fixture()
def layers():
    tracks = sample_tracks()
    made = [Layer.create(*t) for t in tracks_to_layers(tracks, video=False)]
    points = next(ly for ly in made if ly._type_string == "points")
    skeleton = next(ly for ly in made if ly._type_string == "vectors")
    return tracks, points, skeleton


def _codes(tracks):
    # a label per (frame, individual) that differs between animals and over time
    codes = (tracks.frame_index[:, None] // 100 + np.arange(tracks.n_individuals)) % 3
    codes[:40, 0] = -1
    return codes


def test_each_point_gets_its_rows_label_and_colour(layers):
    tracks, points, skeleton = layers
    codes = _codes(tracks)
    names = ["walk", "groom", "court"]
    before = points.face_color.copy()
    label_layers(points, codes, names, column="behaviour", skeleton=skeleton)

    row_of_frame = {f: r for r, f in enumerate(tracks.frame_index)}
    frames = points.data[:, 0].round().astype(int)
    rows = np.array([row_of_frame[f] for f in frames])
    individual = points.features["individual"].cat.codes.to_numpy()
    expected = np.array(names + [NO_LABEL])[np.where(codes[rows, individual] >= 0,
                                                     codes[rows, individual], 3)]
    assert (points.features["behaviour"].astype(str).to_numpy() == expected).all()

    palette = category_colors(names)
    for name in names:
        sel = expected == name
        assert np.allclose(points.face_color[sel], palette[name])
    assert not np.allclose(points.face_color, before)
    assert (expected == NO_LABEL).any()

    seg_rows = np.array([row_of_frame[f] for f in skeleton.data[:, 0, 0].round().astype(int)])
    seg_ind = skeleton.features["individual"].cat.codes.to_numpy()
    seg_expected = codes[seg_rows, seg_ind]
    got = skeleton.features["behaviour"].astype(str).to_numpy()
    assert (got[seg_expected == 1] == "groom").all()
    assert np.allclose(skeleton.edge_color[seg_expected == 2], palette["court"])
    assert points.metadata["skelmae"]["labels"]["behaviour"] == names


def test_relabelling_recolours_and_tracks_still_round_trip(layers):
    tracks, points, _ = layers
    label_layers(points, _codes(tracks), ["a", "b", "c"])
    first = points.face_color.copy()
    label_layers(points, np.zeros((tracks.n_frames, tracks.n_individuals), int), ["only"])
    assert set(points.features["cluster"].astype(str)) == {"only"}
    assert not np.allclose(points.face_color, first)
    back = layers_to_tracks(points)
    np.testing.assert_array_equal(back.positions, tracks.positions)


def test_wrong_shapes_and_foreign_layers_are_refused(layers):
    tracks, points, skeleton = layers
    with pytest.raises(SkelmaeError, match="do not fit"):
        label_layers(points, np.zeros((3, 2), int), ["x"])
    with pytest.raises(SkelmaeError, match="points layer"):
        label_layers(skeleton, _codes(tracks), ["a", "b", "c"])
    with pytest.raises(SkelmaeError, match="unique"):
        label_layers(points, _codes(tracks), ["a", "a", "c"])
