"""Video input and output with PyAV: a streaming, seeking mp4 reader and a deterministic mp4 writer.

* :class:`VideoReader` yields RGB ``(H, W, 3)`` uint8 frames of a video, resized to ``size = (H, W)``
  (area interpolation, as the baselines' ``cv2.INTER_AREA``), by absolute frame index. Reading forward is
  sequential decoding; a jump further than ``seek_threshold`` frames seeks to the previous keyframe first.
  Errors name the video (and the half or clip when the caller passes ``name``) and the frame.
* :class:`VideoWriter` writes ``(H, W, 3)`` uint8 frames to an mp4 at 25 fps with fixed encoder settings
  (``libx264`` when available, else ``mpeg4``; bit-exact flags, one thread). It writes a temporary file and
  renames it. The same frames do not always give the same bytes with libx264 (PyAV 18.1's wheels): when other
  processes load the CPU, a clip now and then comes out different from one encode to the next, although every
  encoder thread setting is 1 (``benchmarks/encode_determinism.py``, BENCHMARKS.md; mpeg4 showed no difference).
  The shards of two runs can therefore differ in a few clips (the tests compare such clips by their decoded
  frames, ``tests/same_video.py``).
* :func:`encode_clip` / :func:`decode_clip`: a short clip to and from mp4 bytes in memory (the frame storage
  of the shards, see :mod:`fpspot.data.shards`); decoding can write into a given array (a slot of a batch)
  and run a per-frame transform instead of the plain conversion (the loader's fused augmentation).
* :class:`RGBConverter`: decoded frame -> RGB array through one kept swscale context (a quarter less CPU
  than ``frame.to_ndarray`` when decoding 50-frame 352x640 chunks; no difference measured on long videos).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np

from fpspot.schema import FPS

PathLike = str | os.PathLike


class VideoError(RuntimeError):
    """A video could not be opened, decoded or encoded. The message names the file and the frame."""


def available_codec(preferred: tuple[str, ...] = ("libx264", "mpeg4")) -> str:
    """The first encoder of ``preferred`` that this PyAV build has."""
    import av

    for name in preferred:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - PyAV raises several types for unknown codecs
            continue
    raise VideoError(f"none of the video encoders {preferred} is available in this PyAV build")


class RGBConverter:
    """Decoded frame -> ``(H, W, 3)`` uint8 RGB, resized to ``size`` (area interpolation) when given.

    Keeps one ``VideoReformatter`` (swscale context) for all the frames it converts: on the short clips of the
    shards this takes a quarter less CPU than ``frame.to_ndarray(format="rgb24")`` (47 vs 62 ms per 50-frame
    352x640 clip, decoding included). ``threads``: swscale threads (0: automatic).
    """

    def __init__(self, size: tuple[int, int] | None = None, threads: int = 1):
        from av.video.reformatter import VideoReformatter

        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.threads = threads
        self._reformatter = VideoReformatter()

    def __call__(self, frame) -> np.ndarray:
        if self.size is None or (frame.height, frame.width) == self.size:
            return self._reformatter.reformat(frame, format="rgb24", threads=self.threads).to_ndarray()
        height, width = self.size
        return self._reformatter.reformat(frame, width=width, height=height, format="rgb24", interpolation="AREA",
                                          threads=self.threads).to_ndarray()


class VideoReader:
    """Random-access reader of one video, optimised for increasing frame requests.

    ``size``: output ``(H, W)`` (default: native). ``name``: what errors call the video (default: the path).
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: PathLike, size: tuple[int, int] | None = None, name: str | None = None,
                 seek_threshold: int = 100, threads: int = 0):
        import av

        self.path = Path(path)
        self.name = name or str(self.path)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.seek_threshold = seek_threshold
        try:
            self._container = av.open(str(self.path))
        except FileNotFoundError:
            raise VideoError(f"{self.name}: no such video file") from None
        except Exception as err:  # noqa: BLE001
            raise VideoError(f"{self.name}: cannot open video ({err})") from None
        if not self._container.streams.video:
            raise VideoError(f"{self.name}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if threads:
            self._stream.thread_count = threads
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(FPS)
        self.fps = float(rate)
        self._time_base = self._stream.time_base
        self._start_pts = self._stream.start_time or 0
        self._convert = RGBConverter(self.size, threads=threads)
        self._decoder: Iterator | None = None
        self._next_index = 0  # index of the frame the decoder yields next (when _decoder is not None)
        self._pending = None

    @property
    def num_frames(self) -> int:
        """Frames in the stream as the container states it (0 when unknown)."""
        return int(self._stream.frames or 0)

    def _index_of(self, frame) -> int:
        if frame.pts is None:
            return self._next_index
        return int(round(float((frame.pts - self._start_pts) * self._time_base) * self.fps))

    def _restart(self, target: int) -> None:
        """Position the decoder at or before ``target`` (seek to a keyframe when it is far away)."""
        if self._decoder is not None and self._next_index <= target < self._next_index + self.seek_threshold:
            return
        pts = int(target / self.fps / self._time_base) + self._start_pts
        try:
            self._container.seek(max(pts, self._start_pts), stream=self._stream, backward=True, any_frame=False)
        except Exception as err:  # noqa: BLE001
            raise VideoError(f"{self.name}: cannot seek to frame {target} ({err})") from None
        self._decoder = self._container.decode(self._stream)
        self._pending = None
        self._next_index = -1

    def _next_frame(self, expected: int):
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        try:
            frame = next(self._decoder)
        except StopIteration:
            return None
        except Exception as err:  # noqa: BLE001
            raise VideoError(f"{self.name}: decoding failed at frame {expected} ({err})") from None
        return frame

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames ``start .. stop - 1`` (to the end when ``stop`` is None) as ``(H, W, 3)`` uint8.

        Raises :class:`VideoError` naming the video and the frame when the video ends before ``stop``.
        """
        if start < 0:
            raise VideoError(f"{self.name}: negative start frame {start}")
        self._restart(start)
        index = start
        while stop is None or index < stop:
            frame = self._next_frame(index)
            if frame is None:
                self._decoder = None
                if stop is None:
                    return
                raise VideoError(f"{self.name}: the video ends before frame {index} (requested {start}..{stop - 1})")
            got = self._index_of(frame)
            if self._next_index == -1 and got > start:
                # the seek landed after the target (inexact index): decode from the beginning instead
                self._container.seek(self._start_pts, stream=self._stream, backward=True, any_frame=False)
                self._decoder = self._container.decode(self._stream)
                self._next_index = 0
                continue
            self._next_index = got + 1
            if got < index:
                continue  # frames before the requested one (after a seek)
            if got > index:
                raise VideoError(f"{self.name}: frame {index} is missing from the stream (next frame is {got})")
            try:
                yield self._convert(frame)
            except Exception as err:  # noqa: BLE001
                raise VideoError(f"{self.name}: cannot convert frame {index} ({err})") from None
            index += 1

    def clip(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop - 1`` as one ``(stop - start, H, W, 3)`` uint8 array."""
        frames = list(self.frames(start, stop))
        return np.stack(frames) if frames else np.zeros((0, *(self.size or (0, 0)), 3), np.uint8)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_frames(path: PathLike, start: int = 0, stop: int | None = None, size: tuple[int, int] | None = None,
                name: str | None = None) -> Iterator[np.ndarray]:
    """Stream frames ``start .. stop - 1`` of a video as ``(H, W, 3)`` uint8 RGB, resized to ``size``."""
    with VideoReader(path, size=size, name=name) as reader:
        yield from reader.frames(start, stop)


def _encoder_options(codec: str, crf: int, gop: int) -> dict[str, str]:
    if codec == "libx264":
        # fixed settings; no B-frame adaptivity or threads that could make the bytes depend on the machine
        return {"crf": str(crf), "preset": "veryfast", "tune": "fastdecode", "g": str(gop), "bf": "0",
                "x264-params": "threads=1:sliced-threads=0:scenecut=0", "flags": "+bitexact"}
    return {"g": str(gop), "qscale": str(max(2, crf // 6)), "flags": "+bitexact", "threads": "1"}


class VideoWriter:
    """Write ``(H, W, 3)`` uint8 RGB frames to an mp4 (25 fps, yuv420p), atomically.

    ``codec``: ``None`` picks ``libx264`` (else ``mpeg4``); ``crf``: quality (libx264 CRF; mpeg4 maps it to
    a fixed quantiser); ``gop``: keyframe interval; ``encoder_options``: entries that replace or add to the
    fixed encoder options (e.g. another ``x264-params``). ``H`` and ``W`` must be even.
    """

    def __init__(self, path: PathLike | io.BytesIO, height: int, width: int, fps: int = FPS,
                 codec: str | None = None, crf: int = 23, gop: int = 50,
                 encoder_options: Mapping[str, str] | None = None):
        import av

        if height % 2 or width % 2:
            raise VideoError(f"{path}: frame size {height}x{width} must be even for yuv420p")
        self.path = path
        self.height, self.width = height, width
        self._tmp = None
        if isinstance(path, (str, os.PathLike)):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.mp4")
            destination = str(self._tmp)
        else:
            destination = path
        self.codec = codec or available_codec()
        self._container = av.open(destination, mode="w", format="mp4",
                                  options={"fflags": "+bitexact", "movflags": "+faststart"} if self._tmp else
                                  {"fflags": "+bitexact", "movflags": "frag_keyframe+empty_moov"})
        self._container.flags |= 0  # keep defaults
        options = {**_encoder_options(self.codec, crf, gop), **(encoder_options or {})}
        stream = self._container.add_stream(self.codec, rate=fps, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        stream.codec_context.flags |= 0
        self._stream = stream
        self._count = 0
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        import av

        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise VideoError(f"{self.path}: frame {self._count} has shape {frame.shape} {frame.dtype}, expected "
                             f"({self.height}, {self.width}, 3) uint8")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self._count
        try:
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        except Exception as err:  # noqa: BLE001
            raise VideoError(f"{self.path}: encoding failed at frame {self._count} ({err})") from None
        self._count += 1

    def write_all(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.write(frame)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        if self._tmp is not None:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001
                pass
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def encode_clip(frames: np.ndarray, crf: int = 23, codec: str | None = None,
                encoder_options: Mapping[str, str] | None = None) -> bytes:
    """Encode ``(T, H, W, 3)`` uint8 frames as mp4 bytes (one GOP, no B-frames; ``encoder_options``: see
    :class:`VideoWriter`)."""
    buffer = io.BytesIO()
    t, h, w, _ = frames.shape
    writer = VideoWriter(buffer, h, w, codec=codec, crf=crf, gop=max(t, 1), encoder_options=encoder_options)
    writer.write_all(frames)
    writer.close()
    return buffer.getvalue()


def decode_clip(data: bytes, name: str = "clip", threads: int = 1,
                transform: Callable[..., np.ndarray] | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Decode mp4 bytes written by :func:`encode_clip` into ``(T, H, W, 3)`` uint8 RGB.

    transform: called as ``transform(frame, out_frame)`` with every decoded ``av.VideoFrame`` (in order) and
    the ``(H, W, 3)`` slot it may fill (None without ``out``), instead of the plain RGB conversion; returns the
    frame (e.g. :class:`fpspot.data.augment.FrameAugmenter`). out: ``(T, H, W, 3)`` uint8 array to decode
    into (e.g. a slot of a batch: saves a copy); its ``T`` must be the clip's length.
    Raises :class:`VideoError` naming ``name`` when the bytes cannot be decoded or do not fit ``out``.
    """
    import av

    convert = RGBConverter(threads=threads)
    frames: list[np.ndarray] = []
    count = 0
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            stream.thread_count = threads
            for frame in container.decode(stream):
                slot = None
                if out is not None:
                    if count >= len(out):
                        raise VideoError(f"{name}: the clip has more than the {len(out)} frames expected")
                    slot = out[count]
                array = transform(frame, slot) if transform is not None else convert(frame)
                if slot is None:
                    frames.append(array)
                elif array is not slot:
                    if array.shape != slot.shape:
                        raise VideoError(f"{name}: frame {count} is {array.shape}, expected {slot.shape}")
                    slot[...] = array
                count += 1
    except VideoError:
        raise
    except Exception as err:  # noqa: BLE001
        raise VideoError(f"{name}: cannot decode the clip ({type(err).__name__}: {err})") from None
    if count == 0:
        raise VideoError(f"{name}: the clip has no frames")
    if out is not None:
        if count != len(out):
            raise VideoError(f"{name}: the clip has {count} frames, expected {len(out)}")
        return out
    return np.stack(frames)
