r"""Data throughput in one table: generated videos/s and training-pipeline batches/s.

    python -m benchmarks.data                    # full run, a few minutes on 2 cores
    python -m benchmarks.data --quick            # smoke run: tiny shapes, seconds
    python -m benchmarks.data --csv data.csv     # also write the table

Generator (benchmarks/generator.py): videos/s of `generate_video` for the c_64x64, c_128x128 and
e_128x128 scene specs (24 frames), compilation excluded.
Input pipeline (benchmarks/pipeline.py): training batches/s from an in-memory source of random
videos, the first batch (worker start-up) and the read-ahead after it excluded, at
  - the MOVi-C training shape (configs/movi_c.py, one of the authors' 2 GPUs: 64 x 4 x 336²,
    imagenet normalisation, 128² source videos) with 0 and 2 grain workers;
  - the default config's shape (configs/synthetic.py's batch, clip length, input size,
    normalisation and workers, read from the file; its generated source videos).
Rates are wall clock: on a shared machine they swing with the load (printed with the machine).
"""

import csv
import dataclasses
import datetime
import os
import pathlib

from absl import app, flags

from benchmarks import generator, machine, pipeline
from configs import movi_c, synthetic
from ssync_jax.data import synthetic_movi

# configs/movi_c.py's global batch of 128 is the authors' 2 GPUs x 64; one GPU's input is measured.
_AUTHORS_GPUS = 2
_MOVI_C_SOURCE_SIZE = 128  # movi_c/128x128.
_FULL_GENERATOR_VIDEOS = 20
_FULL_PIPELINE_BATCHES = 5
_FULL_SOURCE_VIDEOS = 32
# Batches read ahead per reading process (pipeline.train_dataset's default prefetch_buffer_size):
# they come back at once after the first batch, so they are not timed.
_READ_AHEAD = 2
# --quick: every setting shrunk to this square size, 8-frame sources, batch 2, one timed item.
_QUICK_SIZE = 32
_QUICK_FRAMES = 8


@dataclasses.dataclass(frozen=True)
class PipelineSetting:
    """One input-pipeline measurement: a training batch shape and the source it reads.

    Attributes:
        name: what the shape is.
        batch_size: videos per batch (one process).
        image_size: square model input size.
        chunk_length: frames per training chunk.
        normalization: "imagenet" | "zero_one" | "minus_one_one".
        source_size: height = width of the source videos.
        source_frames: frames per source video.
        workers: grain worker counts to measure.
    """

    name: str
    batch_size: int
    image_size: int
    chunk_length: int
    normalization: str
    source_size: int
    source_frames: int
    workers: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        part: "generator" or "pipeline".
        setting: config or shape name.
        shape: what one item is (video H x W x frames, or batch B x T x H²).
        workers: grain workers (None for the generator).
        batches_per_second: pipeline batches/s (None for the generator).
        videos_per_second: videos generated or batched per second.
    """

    part: str
    setting: str
    shape: str
    workers: int | None
    batches_per_second: float | None
    videos_per_second: float


def _square(size: tuple[int, int], what: str) -> int:
    if size[0] != size[1]:
        raise ValueError(f"{what} is {size}; benchmarks/data.py measures square inputs only.")
    return size[0]


def pipeline_settings() -> list[PipelineSetting]:
    """The MOVi-C training setting and the default config's, read from their config files."""
    movi = movi_c.get_config().data
    default = synthetic.get_config().data
    default_source = synthetic_movi.make_config(default.name.removeprefix("synthetic_movi/")).scene_spec()
    return [
        PipelineSetting(
            name="MOVi-C training",
            batch_size=movi.global_batch_size // _AUTHORS_GPUS,
            image_size=_square(movi.image_size, "configs/movi_c.py data.image_size"),
            chunk_length=movi.chunk_length,
            normalization=movi.normalization,
            source_size=_MOVI_C_SOURCE_SIZE,
            source_frames=synthetic_movi.DEFAULT_NUM_FRAMES,
            workers=(0, 2),
        ),
        PipelineSetting(
            name="default (synthetic.py)",
            batch_size=default.global_batch_size,
            image_size=_square(default.image_size, "configs/synthetic.py data.image_size"),
            chunk_length=default.chunk_length,
            normalization=default.normalization,
            source_size=_square((default_source.height, default_source.width), default.name),
            source_frames=default_source.num_frames,
            workers=(default.num_workers,),
        ),
    ]


def quick_setting(setting: PipelineSetting) -> PipelineSetting:
    """`setting` shrunk to a smoke test: batch 2, small frames, short source videos."""
    return dataclasses.replace(
        setting, batch_size=2, image_size=_QUICK_SIZE, source_size=_QUICK_SIZE, source_frames=_QUICK_FRAMES
    )


def generator_rows(
    names: list[str], num_videos: int, size: int | None = None, frames: int | None = None
) -> list[Row]:
    """Generator videos/s per scene config.

    Args:
        names: keys of `generator.CONFIGS`.
        num_videos: videos timed per config (after a compiling one).
        size: overrides height = width when given.
        frames: overrides frames per video when given.

    Returns:
        One row per config.
    """
    rows = []
    for name in names:
        spec = generator.scene_spec(name, size, frames)
        timing = generator.time_generator(spec, num_videos)
        shape = f"{spec.height}x{spec.width} x {spec.num_frames} frames"
        rows.append(Row("generator", name, shape, None, None, timing.videos_per_second))
    return rows


def pipeline_rows(settings: list[PipelineSetting], num_batches: int, num_videos: int) -> list[Row]:
    """Training batches/s (and videos/s) per setting and worker count, from in-memory sources.

    The first batch and the read-ahead buffers' worth after it are not timed.

    Args:
        settings: what to measure.
        num_batches: timed batches per measurement.
        num_videos: videos in each in-memory source.

    Returns:
        One row per setting and worker count.
    """
    rows = []
    for setting in settings:
        source = pipeline.in_memory_source(num_videos, setting.source_size, setting.source_frames)
        shape = (
            f"{setting.batch_size} x {setting.chunk_length} x {setting.image_size}², {setting.normalization} "
            f"(from {setting.source_size}²)"
        )
        for workers in setting.workers:
            rate, _ = pipeline.measure(
                source,
                batch_size=setting.batch_size,
                image_size=setting.image_size,
                chunk_length=setting.chunk_length,
                normalization=setting.normalization,
                num_workers=workers,
                num_batches=num_batches,
                warmup_batches=1 + _READ_AHEAD * (1 + workers),
            )
            rows.append(Row("pipeline", setting.name, shape, workers, rate, rate * setting.batch_size))
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table, one line each."""
    lines = [f"{'part':<10} {'setting':<23} {'shape':<45} {'workers':>7} {'batches/s':>10} {'videos/s':>9}"]
    for row in rows:
        workers = "-" if row.workers is None else str(row.workers)
        batches = "-" if row.batches_per_second is None else f"{row.batches_per_second:.2f}"
        lines.append(
            f"{row.part:<10} {row.setting:<23} {row.shape:<45} {workers:>7} {batches:>10} "
            f"{row.videos_per_second:>9.1f}"
        )
    return "\n".join(lines)


def write_csv(rows: list[Row], path: pathlib.Path, machine_description: str, date: str) -> None:
    """Writes the rows with the machine and date on each, so a file is self-describing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([field.name for field in dataclasses.fields(Row)] + ["machine", "date"])
        for row in rows:
            writer.writerow([*dataclasses.astuple(row), machine_description, date])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    machine_description = machine.describe()
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    quick_note = " (--quick: smoke-run shapes, not figures)" if options.quick else ""
    print(f"{machine_description}; {date}; load average {load}{quick_note}")

    settings = pipeline_settings()
    if options.quick:
        rows = generator_rows(list(generator.CONFIGS), 1, _QUICK_SIZE, _QUICK_FRAMES)
        rows += pipeline_rows([quick_setting(setting) for setting in settings], 1, 4)
    else:
        rows = generator_rows(list(generator.CONFIGS), _FULL_GENERATOR_VIDEOS)
        rows += pipeline_rows(settings, _FULL_PIPELINE_BATCHES, _FULL_SOURCE_VIDEOS)
    print(format_table(rows))
    if options.csv:
        write_csv(rows, pathlib.Path(options.csv), machine_description, date)
        print(f"wrote {options.csv}")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_bool("quick", False, "Smoke run: tiny shapes, one timed item each.")
    flags.DEFINE_string("csv", None, "Also write the table here.")
    app.run(main)
