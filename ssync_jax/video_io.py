"""Reading users' videos and writing result videos: uint8 RGB frames `[T, H, W, 3]` in and out.

`read_video` takes any container and codec FFmpeg decodes (MP4, MOV, MKV, WebM, AVI, GIF, via
PyAV) or a folder of PNG/JPEG frames, taken in file-name order (zero-pad frame numbers:
`frame_0010.png`, not `frame_10.png`). `write_video` picks the format from the extension: `.gif`
(Pillow) or `.mp4` (PyAV, H.264 when FFmpeg has libx264, else MPEG-4 Part 2). Files are written
under a temporary name and renamed when complete, so an existing file is never left half-written.
"""

import os
from fractions import Fraction

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from ssync_jax import errors

FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")
WRITE_EXTENSIONS = (".gif", ".mp4")
# Visually lossless H.264 (0 is lossless, 23 the default); MPEG-4 Part 2 gets its finest quantiser.
_H264_OPTIONS = {"crf": "12"}
_MPEG4_OPTIONS = {"qmin": "1", "qmax": "2"}


def read_video(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video file or of a folder of PNG/JPEG frames.

    Args:
        path: a video file FFmpeg reads, or a folder whose `.png`/`.jpg`/`.jpeg` files are the
            frames in sorted file-name order (other files are ignored).

    Returns:
        uint8 `[T, H, W, 3]` RGB frames, T >= 1.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file cannot be decoded or has no video frames, the folder holds no
            frames, a frame cannot be read, or frames differ in size.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise errors.InputNotFoundError(
            f"No video at {path}; pass an existing video file (e.g. MP4) or a folder of PNG/JPEG frames."
        )
    if os.path.isdir(path):
        return _read_frame_folder(path)
    return _read_video_file(path)


def _read_video_file(path: str) -> np.ndarray:
    """Decodes the first video stream of a container with PyAV."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise errors.ConfigError(f"{path} holds no video stream; pass a video file or a folder of frames.")
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except av.FFmpegError as error:
        raise errors.ConfigError(
            f"Cannot decode {path} as a video ({error}); re-encode it (ffmpeg -i {path} out.mp4) or "
            "pass a folder of PNG/JPEG frames."
        ) from error
    if not frames:
        raise errors.ConfigError(f"{path} has a video stream but no decodable frames; re-encode it or pass a folder of frames.")
    return _stack(frames, [f"{path} frame {t}" for t in range(len(frames))])


def _read_frame_folder(folder: str) -> np.ndarray:
    """Reads the PNG/JPEG files of a folder in sorted name order."""
    names = sorted(name for name in os.listdir(folder) if name.lower().endswith(FRAME_EXTENSIONS))
    if not names:
        raise errors.ConfigError(
            f"The folder {folder} holds no {'/'.join(FRAME_EXTENSIONS)} frames; put the frames there "
            "(named in playback order) or pass a video file."
        )
    frames = []
    for name in names:
        file = os.path.join(folder, name)
        try:
            with Image.open(file) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as error:
            raise errors.ConfigError(f"Cannot read the frame {file} ({error}); replace or remove it.") from error
    return _stack(frames, [os.path.join(folder, name) for name in names])


def _stack(frames: list[np.ndarray], names: list[str]) -> np.ndarray:
    """[H, W, 3] frames -> [T, H, W, 3], naming the first frame whose size differs from the first's."""
    size = frames[0].shape
    for frame, name in zip(frames, names):
        if frame.shape != size:
            raise errors.ConfigError(
                f"{name} is {frame.shape[1]}x{frame.shape[0]} but {names[0]} is {size[1]}x{size[0]}; "
                "all frames of a video must have one size (resize them first)."
            )
    return np.stack(frames).astype(np.uint8, copy=False)  # [T, H, W, 3]


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0) -> None:
    """Writes frames as an animated GIF or an MP4, by the extension of `path`.

    GIF: each frame gets its own 256-colour palette; consecutive identical frames are stored once
    with their durations added (Pillow), so a reader may count fewer frames than were written.
    MP4: yuv420p, whose chroma planes need even sides, so an odd height or width is padded by one
    repeated edge row or column.

    Args:
        path: output file ending in `.gif` or `.mp4`; its folder must exist.
        frames: uint8 `[T, H, W, 3]` RGB frames, T >= 1.
        fps: frames per second, > 0.

    Raises:
        ValueError: unknown extension, frames not uint8 `[T, H, W, 3]`, T = 0, or fps <= 0.
        FileNotFoundError: the folder of `path` does not exist.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in WRITE_EXTENSIONS:
        raise errors.ConfigError(f"Cannot write {path}: choose a file name ending in one of {WRITE_EXTENSIONS}.")
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise errors.ConfigError(
            f"frames must be non-empty uint8 [T, H, W, 3] RGB, got {frames.dtype} {frames.shape}; "
            "convert floats in [0, 1] with (x * 255).round().astype(np.uint8)."
        )
    if not fps > 0:
        raise errors.ConfigError(f"fps must be positive, got {fps}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise errors.InputNotFoundError(f"The folder {folder} of {path} does not exist; create it first.")
    temporary = os.path.join(folder, f".{os.path.basename(path)}.partial")
    try:
        if extension == ".gif":
            _write_gif(temporary, frames, fps)
        else:
            _write_mp4(temporary, frames, fps)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),  # Milliseconds; GIF stores hundredths of a second.
        loop=0,
    )


def _write_mp4(path: str, frames: np.ndarray, fps: float) -> None:
    _, height, width, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")  # even sides
    codec, options = ("libx264", _H264_OPTIONS) if "libx264" in av.codecs_available else ("mpeg4", _MPEG4_OPTIONS)
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))  # Flushes the frames the encoder still holds.
