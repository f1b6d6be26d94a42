"""Joining fragmented track ids into individuals.

Trackers that lose an animal for a few frames often give it a new id when it reappears
(SLEAP's flow tracker, JABS v3 tracklets), so one animal ends up spread over many ids that
are never present at the same time. :func:`merge_fragmented_tracks` chains such fragments
back together by position continuity, without dropping or moving a single point.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import SkelmaeError
from .tracks import PoseTracks

__all__ = ["merge_fragmented_tracks"]


def merge_fragmented_tracks(
    tracks: PoseTracks, max_individuals: int | None = None
) -> PoseTracks:
    """Join track ids that never overlap in time into as few individuals as possible.

    Fragments (ids with at least one point) are taken in order of their first frame. A
    fragment is appended to an individual whose last fragment ended before it starts;
    among those, the one whose last centroid is nearest to the fragment's first centroid,
    per frame elapsed (i.e. the slowest implied movement). Fragments starting on the same
    frame are assigned jointly (Hungarian algorithm). A new individual is opened only when
    no existing one is free (so an animal entering while another's id is broken joins that
    one; check ``merged_from``). Two fragments that overlap in time are never joined, so the
    result has as many individuals as ids overlap at most (usually the largest number of
    ids present in one frame), and every point is kept unchanged.

    Parameters
    ----------
    tracks
        Tracks whose individuals are fragment ids (rows need not be sorted by frame).
    max_individuals
        Upper bound on the number of individuals; a :class:`SkelmaeError` says why when the
        fragments cannot fit (more ids present in one frame, or ids interleaved in time).

    Returns
    -------
    PoseTracks
        Individuals named after their first fragment (so tracker names such as 'female'
        survive and no new name can collide with an old one), in order of first appearance.
        ``metadata['merged_from']`` maps each new name to the original ids it holds, in
        time order (composed with an earlier merge's record). Ids without any point are
        dropped and listed in ``metadata['merged_empty_ids']``.
    """
    if max_individuals is not None and max_individuals < 1:
        raise SkelmaeError(f"max_individuals must be at least 1, got {max_individuals}")
    order = np.argsort(tracks.frame_index, kind="stable")
    frames = tracks.frame_index[order]
    present = ~tracks.missing[order].all(axis=2)  # (rows, ids): any point of the id
    fragment_ids = np.flatnonzero(present.any(axis=0))
    if len(fragment_ids) == 0:
        raise SkelmaeError("there are no tracked points to merge")

    centroids = _centroids(tracks.positions[order])
    first_row = {i: int(np.argmax(present[:, i])) for i in fragment_ids}
    last_row = {i: len(frames) - 1 - int(np.argmax(present[::-1, i])) for i in fragment_ids}
    limit = _check_capacity(tracks, present, frames, fragment_ids, first_row, last_row,
                            max_individuals)

    members: list[list[int]] = []  # original ids of each new individual, in time order
    by_start = sorted(fragment_ids, key=lambda i: (first_row[i], i))
    for start, grouped in itertools.groupby(by_start, key=first_row.__getitem__):
        group = list(grouped)
        free = [k for k, m in enumerate(members) if last_row[m[-1]] < start]
        n_new = min(len(group), limit - len(members))
        cost = np.empty((len(group), len(free) + n_new))
        for col, k in enumerate(free):
            tail = last_row[members[k][-1]]
            jump = np.linalg.norm(centroids[start, group] - centroids[tail, members[k][-1]], axis=1)
            cost[:, col] = jump / (frames[start] - frames[tail])
        # Opening a new individual costs more than any join, so it happens only when needed.
        cost[:, len(free):] = len(group) * (cost[:, : len(free)].max(initial=0.0) + 1.0)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if c < len(free):
                members[free[c]].append(group[r])
            else:
                members.append([group[r]])

    return _assemble(tracks, members, present, order)


def _centroids(positions: np.ndarray) -> np.ndarray:
    """Mean of the visible keypoints, (rows, ids, space); NaN where an id has none."""
    visible = ~np.isnan(positions)
    total = np.where(visible, positions, 0.0).sum(axis=2)
    count = visible.sum(axis=2)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def _check_capacity(tracks, present, frames, fragment_ids, first_row, last_row,
                    max_individuals) -> int:
    """How many individuals the result may have; a clear error when too few."""
    simultaneous = present.sum(axis=1)
    busiest = int(np.argmax(simultaneous))
    # Fragments overlapping in time (first..last frame) can never share an individual.
    starts = np.array(sorted(first_row[i] for i in fragment_ids))
    ends = np.array(sorted(last_row[i] for i in fragment_ids))
    depth = int((np.arange(len(starts)) + 1 - np.searchsorted(ends, starts, side="left")).max())
    if max_individuals is None:
        return depth
    names = tracks.individual_names
    if simultaneous[busiest] > max_individuals:
        at_once = [names[i] for i in np.flatnonzero(present[busiest])]
        raise SkelmaeError(
            f"cannot merge into {max_individuals} individual(s): {len(at_once)} track ids "
            f"are present at the same time in frame {int(frames[busiest])} ({at_once})"
        )
    if depth > max_individuals:
        raise SkelmaeError(
            f"cannot merge into {max_individuals} individual(s): {depth} track ids overlap "
            "in time (their first-to-last frame spans interleave), and fragments that "
            "overlap in time are never joined"
        )
    return depth


def _assemble(tracks: PoseTracks, members: list[list[int]], present, order) -> PoseTracks:
    names = tracks.individual_names
    shape = (tracks.n_frames, len(members), tracks.n_keypoints)
    positions = np.full((*shape, tracks.n_space), np.nan, dtype=np.float32)
    confidence = np.full(shape, np.nan, dtype=np.float32)
    rows_of = np.empty_like(order)
    rows_of[order] = np.arange(len(order))  # original row -> sorted row
    for new, ids in enumerate(members):
        for i in ids:
            rows = present[rows_of, i]  # this fragment's rows, in the original row order
            positions[rows, new] = tracks.positions[rows, i]
            confidence[rows, new] = tracks.confidence[rows, i]

    earlier = tracks.metadata.get("merged_from", {})
    merged_from = {
        names[ids[0]]: [old for i in ids for old in earlier.get(names[i], [names[i]])]
        for ids in members
    }
    used = {i for ids in members for i in ids}
    empty = [names[i] for i in range(tracks.n_individuals) if i not in used]
    metadata = {**tracks.metadata, "merged_from": merged_from}
    if empty:
        metadata["merged_empty_ids"] = empty
    return tracks.replace(
        positions=positions,
        confidence=confidence,
        individual_names=[names[ids[0]] for ids in members],
        metadata=metadata,
    )
