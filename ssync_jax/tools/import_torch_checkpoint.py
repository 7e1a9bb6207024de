r"""Converts the authors' PyTorch SSync checkpoint into an orbax checkpoint of our `VideoModel` params.

    python -m ssync_jax.tools.import_torch_checkpoint --ckpt ssync_movi_c.ckpt \
        --config configs/movi_c.py --out checkpoints/ssync_movi_c

`--ckpt` is the Lightning `.ckpt` (or `.pt/.pth`; reading these needs `pip install torch`, the CPU
build is enough) or the same state dict saved as `.safetensors` / `.npz` (numpy only). The output
directory holds `{"params": ...}` written by `orbax.checkpoint.StandardCheckpointer`; it must not
exist yet. A checkpoint without the frozen DINOv2 gets it from `config.model.encoder.weights`.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from absl import app, flags, logging
from ml_collections import config_flags

from ssync_jax import errors, paths
from ssync_jax.models import build_model, load_pretrained_backbone
from ssync_jax.models.authors_checkpoint import authors_to_flax
from ssync_jax.models.state_dict_io import read_state_dict

def convert(state: dict, model_config: ml_collections.ConfigDict) -> tuple[dict, list[str]]:
    """Maps a state dict to params and checks them against the configured model.

    Args:
        state: The authors' flat state dict.
        model_config: `config.model`.

    Returns:
        (params, unused state-dict keys).
    """
    model = build_model(model_config)
    video = jax.ShapeDtypeStruct((1, 1, *model_config.image_size, 3), jnp.float32)
    expected = jax.eval_shape(lambda v: model.init(jax.random.key(0), v), video)["params"]
    params, unused = authors_to_flax(
        state,
        num_predictor_blocks=model_config.predictor.num_blocks,
        num_decoder_layers=len(model_config.decoder.hidden_sizes) + 1,
    )
    if "backbone" not in params["encoder"]:
        if not model_config.encoder.weights:
            raise errors.ConfigError(
                "the checkpoint holds no DINOv2 backbone (encoder.module.backbone.model.*); set "
                "--config.model.encoder.weights to a Hugging Face directory or timm file of the same variant"
            )
        params["encoder"]["backbone"] = expected["encoder"]["backbone"]
        params = load_pretrained_backbone(params, model_config)
    mismatched = [
        f"{jax.tree_util.keystr(path)}: checkpoint {got.shape} vs config {want.shape}"
        for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(expected))
        if got.shape != want.shape
    ]
    if jax.tree.structure(params) != jax.tree.structure(expected) or mismatched:
        raise errors.ConfigError(
            "the checkpoint does not fit config.model (slot dim, slots, variant, decoder widths?): "
            + ("; ".join(mismatched[:5]) or "different parameter trees")
        )
    return params, unused


def import_checkpoint(ckpt: str | Path, model_config: ml_collections.ConfigDict, out: str | Path) -> list[str]:
    """Reads `ckpt`, converts it, and writes `{"params": ...}` with orbax under `out` (absolute path).

    Returns:
        The checkpoint's keys that no parameter uses (e.g. loss buffers), for the log.
    """
    out = Path(out).absolute()
    if out.exists():
        raise errors.WouldOverwriteError(f"{out} already exists; pass a new --out directory (nothing was written)")
    params, unused = convert(read_state_dict(ckpt), model_config)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(out, {"params": jax.tree.map(jnp.asarray, params)})
    checkpointer.wait_until_finished()
    return unused


def main(argv):
    del argv
    config, ckpt, out = flags.FLAGS.config, flags.FLAGS.ckpt, flags.FLAGS.out
    if not (config and ckpt and out):
        raise app.UsageError("--ckpt, --config and --out are all required")
    paths.check_new_file(out, "--out")  # Before the checkpoint is read.
    if not os.path.isfile(ckpt):
        raise errors.InputNotFoundError(f"--ckpt {ckpt}: no such file.")
    unused = import_checkpoint(ckpt, config.model, out)
    if unused:
        logging.warning("checkpoint entries not used by the model: %s", ", ".join(unused))
    logging.info("wrote %s", Path(out).absolute())


if __name__ == "__main__":
    # Defined here, not at import, so importing `convert` beside main.py's flags cannot clash.
    config_flags.DEFINE_config_file("config", None, "Config whose `model` section fits the checkpoint.")
    cli.DEFINE_path("ckpt", None, "The authors' checkpoint: .ckpt/.pt/.pth (torch) or .safetensors/.npz.")
    cli.DEFINE_path("out", None, "New directory for the orbax checkpoint.")
    cli.run(main)
