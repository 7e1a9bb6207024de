r"""TFDS builder `synthetic_movi`: procedurally generated MOVi-like videos in Kubric's format.

Config names read `{variant}_{H}x{W}[_{S}frames][_train{N}][_validation{N}][_test{N}]`:
variant `a` has 2-5 larger plain-coloured objects on a plain floor and sky and a static camera (like
MOVi-A, with fewer objects), `c` has 3-10 checker-textured objects and a static camera (like MOVi-C),
`e` has 11-23 objects and a linearly moving camera (like MOVi-E); S defaults to 24 frames; the split sizes default to
DEFAULT_SPLIT_SIZES. Parts equal to their default are dropped from the canonical name, so every
distinct dataset has its own directory `DATA_DIR/synthetic_movi/NAME/1.0.0` and a dataset prepared
with other sizes is never picked up. Registered configs: `c_64x64`, `c_128x128`, `e_128x128`.

Split k uses seeds k * SEED_STRIDE + [0, size): the splits never share a scene, the same name always
gives the same videos (example i of a split is seed offset + i), and a larger dataset starts with
the videos of a smaller one.

Prepare (the pipeline also does this on first use):

    python -m ssync_jax.data.synthetic_movi --config c_64x64 --data_dir ~/tensorflow_datasets

A MOVi-C-sized dataset (9,750 / 250 / 1,000 videos at 128x128; about 10k videos), then used as
`--config.data.name=synthetic_movi/c_128x128_train9750_validation250_test1000`:

    python -m ssync_jax.data.synthetic_movi --config c_128x128 --data_dir DIR \
        --train_size 9750 --validation_size 250 --test_size 1000

What preparing costs per video (time and bytes; most of the time is TFDS encoding the example) is
measured by `python -m benchmarks.tfds_synthetic_movi`; the figures are in docs/DATA.md.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import dataclasses
import os
import re
import sys
import time
from collections.abc import Iterator

from ssync_jax import logs

logs.import_tensorflow_quietly()  # Its C++ start-up lines stay off stderr (--log_libraries shows them).
import tensorflow_datasets as tfds  # noqa: E402
from absl import app, flags  # noqa: E402
from etils import epath  # noqa: E402

from ssync_jax import errors  # noqa: E402
from ssync_jax.data import features as features_lib  # noqa: E402
from ssync_jax.data import synthetic  # noqa: E402

NAME = "synthetic_movi"
DATASET_VERSION = "1.0.0"
SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT_SIZES = {"train": 300, "validation": 50, "test": 50}
DEFAULT_NUM_FRAMES = 24
# Split k draws seeds from [k * SEED_STRIDE, (k + 1) * SEED_STRIDE): disjoint for any split size.
SEED_STRIDE = 1_000_000_000
# Scene family -> SceneSpec fields (the rest keep SceneSpec's MOVi-like defaults).
# MOVi-A-like `a`: plain-coloured solids on a plain floor under a plain sky, and fewer, larger objects
# spawned closer together than MOVi-C's, so that small frames (32²) still show each object over several
# encoder patches. MOVi-C-like `c`: checker-textured objects and background. MOVi-E-like `e` scenes hold
# up to 23 objects, so they spawn over a wider floor seen from farther away; otherwise most of the frame
# is one or two near objects.
VARIANTS = {
    "a": {
        "min_objects": 2,
        "max_objects": 5,
        "camera_motion": "static",
        "texture": "plain",
        "object_scale": (0.6, 1.0),
        "spawn_extent": 3.0,
    },
    "c": {"min_objects": 3, "max_objects": 10, "camera_motion": "static"},
    "e": {
        "min_objects": 11,
        "max_objects": 23,
        "camera_motion": "linear",
        "spawn_extent": 6.0,
        "camera_distance": (12.0, 16.0),
    },
}
DEFAULT_CONFIG = "c_64x64"
REGISTERED_CONFIGS = ("c_64x64", "c_128x128", "e_128x128")

_CONFIG_NAME = re.compile(
    r"(?P<variant>[a-z]+)_(?P<height>\d+)x(?P<width>\d+)"
    r"(?:_(?P<num_frames>\d+)frames)?"
    r"(?:_train(?P<train>\d+))?(?:_validation(?P<validation>\d+))?(?:_test(?P<test>\d+))?"
)


@dataclasses.dataclass(eq=False)
class SyntheticMoviConfig(tfds.core.BuilderConfig):
    """One generated dataset: scene family, resolution, video length and split sizes."""

    variant: str = "c"
    height: int = 64
    width: int = 64
    num_frames: int = DEFAULT_NUM_FRAMES
    train_size: int = DEFAULT_SPLIT_SIZES["train"]
    validation_size: int = DEFAULT_SPLIT_SIZES["validation"]
    test_size: int = DEFAULT_SPLIT_SIZES["test"]

    def split_sizes(self) -> dict[str, int]:
        """Videos per split, keyed by split name."""
        return {"train": self.train_size, "validation": self.validation_size, "test": self.test_size}

    def scene_spec(self) -> synthetic.SceneSpec:
        """The renderer's scene parameters for this config."""
        return synthetic.SceneSpec(
            height=self.height,
            width=self.width,
            num_frames=self.num_frames,
            **VARIANTS[self.variant],
        )


def make_config(
    name: str,
    *,
    train_size: int | None = None,
    validation_size: int | None = None,
    test_size: int | None = None,
) -> SyntheticMoviConfig:
    """Parses a config name (see the module docstring); keyword sizes override the name's.

    Args:
        name: e.g. `c_64x64`, `e_128x128_train1000`, `c_16x16_3frames_train2_validation2_test2`.
        train_size: videos in `train`; None keeps the name's (or the default) size.
        validation_size: videos in `validation`; None keeps the name's (or the default) size.
        test_size: videos in `test`; None keeps the name's (or the default) size.

    Returns:
        The config, named canonically (parts equal to their defaults dropped).

    Raises:
        ValueError: the name does not follow the grammar, or a size is not in [1, SEED_STRIDE).
    """
    match = _CONFIG_NAME.fullmatch(name)
    if match is None or match["variant"] not in VARIANTS:
        raise errors.ConfigError(
            f"Unknown {NAME} config {name!r}: expected {{variant}}_{{H}}x{{W}}[_{{S}}frames]"
            f"[_train{{N}}][_validation{{N}}][_test{{N}}] with variant in {sorted(VARIANTS)}, "
            f"e.g. {', '.join(REGISTERED_CONFIGS)}."
        )
    overrides = {"train": train_size, "validation": validation_size, "test": test_size}
    sizes = {}
    for split in SPLITS:
        size = overrides[split] if overrides[split] is not None else match[split]
        sizes[split] = int(size) if size is not None else DEFAULT_SPLIT_SIZES[split]
        if not 1 <= sizes[split] < SEED_STRIDE:
            raise errors.ConfigError(f"{split} size {sizes[split]} of {name!r} must be in [1, {SEED_STRIDE}).")
    height, width = int(match["height"]), int(match["width"])
    num_frames = int(match["num_frames"] or DEFAULT_NUM_FRAMES)
    canonical = f"{match['variant']}_{height}x{width}"
    if num_frames != DEFAULT_NUM_FRAMES:
        canonical += f"_{num_frames}frames"
    canonical += "".join(
        f"_{split}{sizes[split]}" for split in SPLITS if sizes[split] != DEFAULT_SPLIT_SIZES[split]
    )
    variant = VARIANTS[match["variant"]]
    return SyntheticMoviConfig(
        name=canonical,
        description=(
            f"{height}x{width}, {num_frames} frames, "
            f"{variant['min_objects']}-{variant['max_objects']} objects, "
            + ("plain colours, " if variant.get("texture") == "plain" else "")
            + f"{variant['camera_motion']} camera; "
            + ", ".join(f"{split} {sizes[split]} videos" for split in SPLITS)
        ),
        variant=match["variant"],
        height=height,
        width=width,
        num_frames=num_frames,
        train_size=sizes["train"],
        validation_size=sizes["validation"],
        test_size=sizes["test"],
    )


def split_seeds(split: str, size: int) -> range:
    """The renderer seeds of a split's videos, in example order.

    Args:
        split: one of SPLITS.
        size: number of videos.

    Returns:
        range of `size` seeds starting at SPLITS.index(split) * SEED_STRIDE.
    """
    return range(SPLITS.index(split) * SEED_STRIDE, SPLITS.index(split) * SEED_STRIDE + size)


class SyntheticMovi(tfds.core.GeneratorBasedBuilder):
    """Generated MOVi-like videos (see the module docstring)."""

    VERSION = tfds.core.Version(DATASET_VERSION)
    RELEASE_NOTES = {DATASET_VERSION: "Initial release."}
    BUILDER_CONFIGS = [make_config(name) for name in REGISTERED_CONFIGS]
    DEFAULT_CONFIG_NAME = DEFAULT_CONFIG
    # tfds 4.9.10 derives this through `importlib_resources`, which it only installs for
    # Python < 3.9; the builder's own file is the answer it looks for.
    code_path = epath.Path(__file__)

    @classmethod
    def get_builder_config(cls, name: str, version: str | None = None) -> SyntheticMoviConfig | None:
        """Resolves registered names and any name following the grammar of `make_config`."""
        registered = super().get_builder_config(name, version)
        if registered is not None or _CONFIG_NAME.fullmatch(name) is None:
            return registered
        config = make_config(name)
        return super().get_builder_config(config.name, version) or config

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self,
            description="Procedurally generated multi-object videos in Kubric MOVi's format.",
            features=features_lib.movi_features(config.num_frames, config.height, config.width),
            # Example i of a split is seed offset + i; the training pipeline shuffles.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Nothing to download.
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict]]:
        config = self.builder_config
        # One process: TFDS encodes each example in this process, which takes much longer than
        # rendering it (docs/RESULTS.md §4), so rendering processes gain nothing.
        spec = config.scene_spec()
        for index, seed in enumerate(split_seeds(split, config.split_sizes()[split])):
            yield index, synthetic.generate_video(spec, seed)


def load_builder(name: str, data_dir: str | os.PathLike | None = None) -> SyntheticMovi:
    """The builder of a config, whether or not it is prepared.

    `tfds.builder` would return a generic read-only builder for prepared unregistered configs; this
    always gives a SyntheticMovi with the parsed config.

    Args:
        name: `synthetic_movi/CONFIG[:1.0.0]` or just `CONFIG` (see `make_config`).
        data_dir: TFDS data directory; None = TFDS's default.

    Returns:
        The builder.

    Raises:
        ValueError: the name is not one of ours or asks for another version.
    """
    config_name, _, version = name.removeprefix(f"{NAME}/").partition(":")
    if version not in ("", DATASET_VERSION):
        raise errors.ConfigError(f"{name}: only version {DATASET_VERSION} of {NAME} exists.")
    return SyntheticMovi(config=make_config(config_name).name, data_dir=data_dir)


def prepare(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    file_format: str = "array_record",
    num_shards: int | None = None,
) -> SyntheticMovi:
    """Generates the dataset unless it is already there; safe to call on every start.

    TFDS writes into an `incomplete.*` directory and renames it when every split is written, so an
    interrupted run leaves nothing that looks prepared and the next call starts over; when two
    processes prepare the same data at once, both go on with whichever copy was finished first.

    Args:
        name: `synthetic_movi/CONFIG[:1.0.0]` or just `CONFIG` (see `make_config`).
        data_dir: TFDS data directory; None = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
        file_format: `array_record` (random access, what grain reads) or `tfrecord`.
        num_shards: files per split; None lets TFDS choose from the size.

    Returns:
        The prepared builder.

    Raises:
        ValueError: the prepared data differs from what `name` asks for (sizes or file format).
    """
    builder = load_builder(name, data_dir)
    try:
        builder.download_and_prepare(
            file_format=file_format, download_config=tfds.download.DownloadConfig(num_shards=num_shards)
        )
    except FileExistsError:
        # Another process (e.g. a second training run started beside this one) prepared the same
        # dataset while this one generated it: TFDS refuses to rename this copy over the finished
        # one and removes it. The videos are a function of the name, so use the other's.
        builder = load_builder(name, data_dir)
        if not builder.is_prepared():
            raise
    check_prepared(builder, file_format)
    return builder


def check_prepared(builder: SyntheticMovi, file_format: str | None = None) -> None:
    """Raises unless the prepared data has the config's split sizes (and file format, if given).

    Args:
        builder: a builder whose data directory exists.
        file_format: required file format, or None for any.

    Raises:
        ValueError: naming the directory, what was found and what was asked for.
    """
    config = builder.builder_config
    found = {split: info.num_examples for split, info in builder.info.splits.items()}
    if found != config.split_sizes():
        raise errors.ConfigError(
            f"{builder.data_path} holds {found} videos but {NAME}/{config.name} means "
            f"{config.split_sizes()}; it was prepared by other code. Delete that directory to "
            "regenerate it."
        )
    if file_format is not None and builder.info.file_format.value != file_format:
        raise errors.ConfigError(
            f"{builder.data_path} was prepared as {builder.info.file_format.value}, not "
            f"{file_format}. Use another --data_dir, delete that directory, or convert it: python "
            f"-m ssync_jax.data.movi_convert --name {NAME}/{config.name}:{DATASET_VERSION} --data_dir "
            f"{builder.data_dir_root} --out_dir OUT_DIR"
        )


def _check_config_flag(name: str) -> bool:
    """absl validator of --config: the grammar of `make_config`, its message on failure."""
    try:
        make_config(name.removeprefix(f"{NAME}/"))
    except ValueError as error:
        raise flags.ValidationError(str(error)) from None
    return True


def main(argv: list[str]) -> None:
    """CLI: prepare one config; TFDS prints a progress bar per split."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    start = time.perf_counter()
    config = make_config(
        options.config.removeprefix(f"{NAME}/"),
        train_size=options.train_size,
        validation_size=options.validation_size,
        test_size=options.test_size,
    )
    builder = prepare(config.name, options.data_dir, file_format=options.file_format)
    print(
        f"{NAME}/{config.name} ({config.description}) ready in {builder.data_path} "
        f"after {time.perf_counter() - start:.0f} s; use --config.data.name={NAME}/{config.name}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_string("config", DEFAULT_CONFIG, "config name, see the module docstring")
    cli.DEFINE_path("data_dir", None, "TFDS data directory")
    for split in SPLITS:
        flags.DEFINE_integer(
            f"{split}_size", None, f"videos in {split}", lower_bound=1, upper_bound=SEED_STRIDE - 1
        )
    flags.DEFINE_enum(
        "file_format", "array_record", ["array_record", "tfrecord"], "array_record (random access) or tfrecord"
    )
    flags.register_validator("config", _check_config_flag)
    cli.run(main)
