"""Flat name -> array state dicts from disk: `.safetensors` and `.npz` with numpy alone, PyTorch files with torch.

torch is only imported for `.pth/.pt/.bin/.ckpt` files.
"""

from pathlib import Path

import ml_dtypes  # noqa: F401  Registers bfloat16 with numpy, which safetensors.numpy needs for BF16 tensors.
import numpy as np
import safetensors.numpy

from ssync_jax import errors


def load_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, with its stored dtype and shape."""
    try:
        return safetensors.numpy.load_file(path)
    except Exception as error:  # The library raises several types for files that are not safetensors.
        raise errors.ConfigError(f"{path} is not a readable safetensors file ({type(error).__name__}: {error})") from error


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a flat state dict.

    Args:
        path: `.safetensors` or `.npz` (numpy only), or `.pth/.pt/.bin/.ckpt` (needs torch; a Lightning
            checkpoint's `state_dict` entry is taken).

    Returns:
        Tensor name -> array.
    """
    path = Path(path)
    if not path.is_file():
        raise errors.InputNotFoundError(f"state dict {path} does not exist")
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    if path.suffix == ".npz":
        with np.load(path) as data:
            return dict(data)
    if path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return _read_torch_file(path)
    raise errors.ConfigError(
        f"{path}: unknown weights format {path.suffix!r}; expected .safetensors, .npz, .pth, .pt, .bin or .ckpt"
    )


def _read_torch_file(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading {path} needs PyTorch (`pip install torch`; the CPU build is enough). Without it, convert the "
            "file once where torch is installed: state = torch.load(path, map_location='cpu'); "
            "safetensors.torch.save_file(state.get('state_dict', state), 'weights.safetensors'), and pass that file."
        ) from error
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    elif isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return {name: value.detach().float().numpy() for name, value in state.items() if hasattr(value, "detach")}
