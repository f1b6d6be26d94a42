"""Lazy video frames for napari, and finding the video that belongs to a tracks file.

Pose videos are long (often 10^5 frames of a megapixel), so they are never decoded as a
whole: :class:`VideoReader` is an array-like that napari can use directly as Image layer
data, decoding only the frames that are looked at. No Qt or napari import here.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from .errors import SkelmaeError, SkelmaeWarning

__all__ = ["VIDEO_SUFFIXES", "VideoError", "VideoReader", "find_video", "video_fps"]

#: Video file suffixes looked for, in order of preference when several share a stem.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".webm")

#: Suffixes of tracks files, longest first, stripped to get the video's stem.
TRACKS_SUFFIXES = (
    ".predictions.analysis.h5",
    ".analysis.h5",
    ".predictions.slp",
    ".labels.slp",
    ".csv.gz",
    ".slp",
    ".h5",
    ".hdf5",
    ".csv",
    ".nc",
    ".nwb",
)


class VideoError(SkelmaeError):
    """A video file could not be opened or decoded. The message names the file."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"Cannot read video '{self.path}': {problem}")


class VideoReader:
    """Frames of a video as a lazy (frames, height, width, 3) uint8 array.

    Decoding happens on indexing: reading frames in order keeps decoding forward, a jump
    seeks to the keyframe before the target and decodes forward to it (checking each
    frame's timestamp, never counting blindly). Recent frames are kept in an LRU cache.
    Access is serialised by a lock, because napari may slice from a worker thread.

    The shape uses the frame count the container declares; a frame that cannot be decoded
    (damaged or truncated file) reads as black, with one :class:`SkelmaeWarning`.
    """

    #: Decode forward instead of seeking when the target is at most this many frames ahead.
    forward_decode_limit = 64
    #: Refuse to stack more than this many bytes at once (``np.asarray`` of a long video).
    max_array_bytes = 2 * 1024**3

    def __init__(self, path: str | os.PathLike, cache_size: int = 64):
        self.path = Path(path)
        self.cache_size = max(int(cache_size), 1)
        self._lock = threading.RLock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._warned = False
        self._decodable: int | None = None
        self._container = None
        with self._lock:
            self._open()
            first = self._read_frame(0) if self._n_frames else None
        if first is None:
            self.close()
            raise VideoError(self.path, "no frame of the video can be decoded")
        self.height, self.width = first.shape[:2]
        first.setflags(write=False)
        self._cache[0] = first

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self._n_frames, self.height, self.width, 3)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_frames(self) -> int:
        return self._n_frames

    def __len__(self) -> int:
        return self._n_frames

    def __getitem__(self, key):
        """Index like a numpy array; the first index picks frames, the rest index each frame."""
        head, rest = (key[0], key[1:]) if isinstance(key, tuple) and key else (key, ())
        if isinstance(head, (int, np.integer)):
            return self._frame(self._check_index(int(head)))[rest]
        if head is Ellipsis:
            return self._stack(np.arange(self._n_frames))[key]
        if isinstance(head, slice):
            frames = np.arange(self._n_frames)[head]
        else:
            try:
                frames = np.arange(self._n_frames)[np.asarray(head)]
            except IndexError as e:
                raise IndexError(
                    f"{e} (video '{self.path.name}' has {self._n_frames} frames)"
                ) from e
        stacked = self._stack(frames.ravel())
        stacked = stacked.reshape(frames.shape + stacked.shape[1:])
        return stacked[(slice(None),) * frames.ndim + rest]

    def __array__(self, dtype=None, copy=None):
        arr = self._stack(np.arange(self._n_frames))
        return arr if dtype is None else arr.astype(dtype)

    def __iter__(self):
        for i in range(self._n_frames):
            yield self._frame(i)

    def __repr__(self) -> str:
        return (
            f"VideoReader('{self.path.name}', {self._n_frames} frames, "
            f"{self.width}x{self.height}, {self.fps:g} fps)"
        )

    # ------------------------------------------------------------------ facts
    @property
    def decodable_frames(self) -> int:
        """Frames with complete data in the file, counted by reading packets (no decoding).

        Smaller than ``len(self)`` for truncated files; it may still overcount a stream whose
        packets are complete but undecodable.
        """
        if self._decodable is None:
            import av

            count = 0
            try:
                with av.open(str(self.path)) as container:
                    stream = container.streams.video[0]
                    for packet in container.demux(stream):
                        count += packet.size > 0 and not packet.is_corrupt
            except (av.error.FFmpegError, OSError):
                pass  # the count up to the damage is the answer
            self._decodable = count
        return self._decodable

    def close(self) -> None:
        """Release the file; the next read opens it again."""
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ decoding
    def _open(self) -> None:
        import av

        if not self.path.is_file():
            raise VideoError(self.path, "no such file")
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise VideoError(self.path, f"not a readable video ({e})") from e
        if not container.streams.video:
            container.close()
            raise VideoError(self.path, "the file holds no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or stream.time_base is None:
            container.close()
            raise VideoError(self.path, "the video stream declares no frame rate")
        self._container, self._stream = container, stream
        self._rate = Fraction(rate)
        self._time_base = Fraction(stream.time_base)
        self._start_pts = stream.start_time or 0
        self.fps = float(self._rate)
        self._n_frames = (
            stream.frames or self._frames_from_duration(container, stream) or self.decodable_frames
        )
        self._decoder = None  # iterator of (frame number, av frame) from the read position
        self._ahead = None  # a decoded frame beyond the last target, not yet consumed
        self._next_number = 0  # the frame number the decoder yields next
        self._end = None  # the number after the last frame, once decoding reached the end

    def _frames_from_duration(self, container, stream) -> int:
        if stream.duration:
            seconds = stream.duration * self._time_base
        elif container.duration:
            seconds = Fraction(container.duration, 1_000_000)
        else:
            return 0
        return int(round(seconds * self._rate))

    def _check_index(self, i: int) -> int:
        if not -self._n_frames <= i < self._n_frames:
            raise IndexError(
                f"frame {i} is out of range for video '{self.path.name}' "
                f"({self._n_frames} frames)"
            )
        return i % self._n_frames

    def _stack(self, frames: np.ndarray) -> np.ndarray:
        nbytes = len(frames) * self.height * self.width * 3
        if nbytes > self.max_array_bytes:
            raise VideoError(
                self.path,
                f"reading {len(frames)} frames at once would take {nbytes / 1024**3:.1f} GiB; "
                "index single frames or short ranges instead",
            )
        out = np.empty((len(frames), self.height, self.width, 3), dtype=np.uint8)
        for k, i in enumerate(frames):
            out[k] = self._frame(int(i))
        return out

    def _frame(self, i: int) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(i)
            if cached is not None:
                self._cache.move_to_end(i)
                return cached
            if self._container is None:
                self._open()
            frame = self._read_frame(i)
            if frame is None:
                frame = self._black(i)
            elif frame.shape[:2] != (self.height, self.width):
                raise VideoError(self.path, f"frame {i} changes size to {frame.shape[:2]}")
            frame.setflags(write=False)
            self._cache[i] = frame
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return frame

    def _black(self, i: int) -> np.ndarray:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"Video '{self.path}': frame {i} cannot be decoded (the file declares "
                f"{self._n_frames} frames but is damaged or shorter); showing black frames "
                "where frames are missing.",
                SkelmaeWarning,
                stacklevel=4,
            )
        return np.zeros((self.height, self.width, 3), dtype=np.uint8)

    def _read_frame(self, i: int) -> np.ndarray | None:
        """Decode frame ``i``: forward from the read position when close, else by seeking."""
        if self._end is not None and i >= self._end:
            return None  # past the last frame the file holds
        if self._decoder is not None:
            position = self._ahead[0] if self._ahead else self._next_number
            if 0 <= i - position <= self.forward_decode_limit:
                return self._decode_until(i)
        return self._seek_and_decode(i)

    def _seek_and_decode(self, i: int) -> np.ndarray | None:
        """Seek to the keyframe before frame ``i`` and decode forward to it.

        If the seek lands after ``i`` (inexact container index), decode from the start.
        """
        import av

        target = self._start_pts + int(round(i / (self._rate * self._time_base)))
        for seek_pts in dict.fromkeys((target, self._start_pts)):
            self._decoder = self._ahead = None
            try:
                self._container.seek(seek_pts, stream=self._stream, backward=True)
            except (av.error.FFmpegError, OSError):
                continue
            decoder = self._decoded_frames()
            first = next(decoder, None)
            if first is None:
                return None  # nothing decodes from here on
            self._decoder, self._ahead = decoder, first
            if first[0] <= i:
                return self._decode_until(i)
        return None

    def _decode_until(self, i: int) -> np.ndarray | None:
        """Decode forward to frame ``i``; None when the stream skips it or ends before it."""
        while True:
            item, self._ahead = self._ahead, None
            if item is None:
                item = next(self._decoder, None)
            if item is None:
                self._decoder = None
                self._end = self._next_number
                return None
            number, frame = item
            self._next_number = number + 1
            if number == i:
                return frame.to_ndarray(format="rgb24")
            if number > i:
                self._ahead = item
                return None

    def _decoded_frames(self):
        """(frame number, frame) pairs from the demuxer's position; damaged packets skipped."""
        import av

        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError):
                return  # the rest of the file is unreadable
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # one damaged packet; later keyframes may decode again
            for frame in frames:
                yield self._frame_number(frame), frame

    def _frame_number(self, frame) -> int:
        if frame.pts is None:  # no timestamp: the frame after the last one
            return self._next_number
        return int(round((frame.pts - self._start_pts) * self._time_base * self._rate))


def video_fps(path: str | os.PathLike) -> float | None:
    """The frame rate a video's container declares (metadata only), None if unreadable."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            return float(rate) if rate else None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return None


def find_video(
    tracks_path: str | os.PathLike, stored: str | os.PathLike | None = None
) -> Path | None:
    """The video of a tracks file, or None.

    Tries, in order: the path stored in the tracks file (relative to the tracks file, then
    as given); a video with the stored file name beside the tracks file or in a ``videos/``
    folder beside it or one level up (files often store paths of another machine); a video
    with the tracks file's stem (``x.slp`` -> ``x.mp4``, ``x.mp4.labels.slp`` -> ``x.mp4``);
    DeepLabCut naming (``<video>DLC_<scorer>...h5`` -> ``<video>.mp4`` beside, in
    ``../videos/`` or in the parent folder; ``labeled-data/<video>/CollectedData_*.h5`` ->
    ``videos/<video>.mp4``).
    """
    tracks = Path(tracks_path)
    here = tracks.parent
    video_dirs = (here, here / "videos", here.parent / "videos")
    if stored:
        stored_str = os.fspath(stored)
        for candidate in (here / stored_str, Path(stored_str)):
            if candidate.is_file():
                return candidate
        name = _file_name(stored_str)
        if name:
            for folder in video_dirs:
                if (folder / name).is_file():
                    return folder / name

    stem = _tracks_stem(tracks.name)
    if Path(stem).suffix.lower() in VIDEO_SUFFIXES and (here / stem).is_file():
        return here / stem
    found = _video_with_stem(here, stem)
    if found:
        return found

    dlc_dirs = (here, here.parent / "videos", here.parent)
    for dlc_stem in _dlc_video_stems(tracks.name):
        for folder in dlc_dirs:
            found = _video_with_stem(folder, dlc_stem)
            if found:
                return found
    if tracks.name.startswith("CollectedData") and here.parent.name == "labeled-data":
        return _video_with_stem(here.parent.parent / "videos", here.name)
    return None


def _file_name(stored: str) -> str:
    """The last component of a path written on any OS (SLEAP files hold Windows paths too)."""
    pure = PureWindowsPath(stored) if "\\" in stored else PurePosixPath(stored)
    return pure.name


def _tracks_stem(name: str) -> str:
    lower = name.lower()
    for suffix in TRACKS_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _dlc_video_stems(name: str) -> list[str]:
    """Candidate video stems of a DeepLabCut output name, longest first."""
    starts = [i for i in range(len(name)) if name.startswith("DLC_", i) and i > 0]
    return [name[:i] for i in reversed(starts)]


def _video_with_stem(folder: Path, stem: str) -> Path | None:
    """The video ``folder/stem.<video suffix>`` (suffix case ignored), preferring .mp4."""
    if not stem or not folder.is_dir():
        return None
    try:
        matches = {
            entry.suffix.lower(): entry
            for entry in folder.iterdir()
            if entry.stem == stem and entry.suffix.lower() in VIDEO_SUFFIXES and entry.is_file()
        }
    except OSError:
        return None
    for suffix in VIDEO_SUFFIXES:
        if suffix in matches:
            return matches[suffix]
    return None
