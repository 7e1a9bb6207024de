r"""Writes a trained model as the authors' PyTorch state dict, to share with users of their code.

    python -m ssync_jax.tools.export_torch_checkpoint --workdir workdirs/movi_c --out ssync_movi_c.safetensors
    python -m ssync_jax.tools.export_torch_checkpoint --workdir checkpoints/imported \
        --config configs/movi_c.py --out ssync_movi_c.safetensors          # a params checkpoint

Their side (wjun0830/SSync, the same configs/SSync/*.yaml):

    model.load_state_dict(safetensors.torch.load_file("ssync_movi_c.safetensors"))

Every tensor of their model is written, the frozen DINOv2 included, under their names and layouts
(`ssync_jax.models.authors_checkpoint.flax_to_authors`); only models with the MLP feature decoder
(the SSync/VideoSAUR configs) have their layout. The output file must not exist; it is written to a
temporary name first, so an interrupted export leaves nothing that looks complete.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import os

import jax
import ml_collections
import numpy as np
import safetensors.numpy
from absl import flags

from ssync_jax import errors, inference, paths
from ssync_jax.models.authors_checkpoint import flax_to_authors


def export(params, model_config: ml_collections.ConfigDict, out: str) -> dict[str, np.ndarray]:
    """Writes `params` as the authors' state dict to the new file `out`.

    Args:
        params: the model's params.
        model_config: `config.model` (an MLP-decoder model).
        out: the `.safetensors` file to create.

    Returns:
        The state dict written.

    Raises:
        FileExistsError: `out` exists (nothing is written).
        ValueError: the model has no MLP decoder, so the authors' layout does not apply.
    """
    if os.path.exists(out):
        raise errors.WouldOverwriteError(f"{out} already exists; pass a new --out file (nothing was written)")
    if model_config.decoder.name != "mlp":
        raise errors.ConfigError(
            f"config.model.decoder.name={model_config.decoder.name!r}: only the MLP feature decoder of the "
            "SSync configs (configs/movi_c.py, configs/movi_e.py) has the authors' layout"
        )
    state = flax_to_authors(
        jax.device_get(params), model_config.predictor.num_blocks, len(model_config.decoder.hidden_sizes) + 1
    )
    temporary = out + ".partial"
    safetensors.numpy.save_file(state, temporary)
    os.replace(temporary, out)
    return state


def main(argv):
    del argv
    paths.check_new_file(flags.FLAGS.out, "--out")  # Before the model loads.
    predictor = inference.load(flags.FLAGS.workdir, step=flags.FLAGS.step, config=flags.FLAGS.config)
    state = export(predictor.params, predictor.config.model, flags.FLAGS.out)
    print(f"wrote {len(state)} tensors to {flags.FLAGS.out}")


if __name__ == "__main__":
    from ml_collections import config_flags

    cli.DEFINE_path("workdir", None, "A training workdir, or an orbax params checkpoint.", required=True)
    flags.DEFINE_integer("step", None, "The workdir checkpoint to export (default: the latest).")
    cli.DEFINE_path("out", None, "The .safetensors file to create.", required=True)
    config_flags.DEFINE_config_file("config", None, "The config, needed for a params checkpoint only.")
    cli.run(main)
