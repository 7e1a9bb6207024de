"""Flat name -> array state dicts from disk: `.safetensors` and `.npz` with numpy alone, PyTorch files with torch.

The safetensors reader (8-byte header length, JSON header, raw buffer) avoids depending on the
`safetensors` package; torch is only imported for `.pth/.pt/.bin/.ckpt` files.
"""

import json
import os
import struct
from pathlib import Path

import ml_dtypes
import numpy as np

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every tensor of a safetensors file.

    Args:
        path: The `.safetensors` file.

    Returns:
        Tensor name -> array with the stored dtype and shape.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
    (header_size,) = struct.unpack("<Q", raw[:8])
    if 8 + header_size > len(raw):
        raise ValueError(f"{path} is not a safetensors file or is truncated (header of {header_size} bytes)")
    header = json.loads(raw[8 : 8 + header_size])
    buffer = memoryview(raw)[8 + header_size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(buffer[begin:end], dtype=_DTYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"]).copy()
    return tensors


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a flat state dict.

    Args:
        path: `.safetensors` or `.npz` (numpy only), or `.pth/.pt/.bin/.ckpt` (needs torch; a Lightning
            checkpoint's `state_dict` entry is taken).

    Returns:
        Tensor name -> array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"state dict {path} does not exist")
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    if path.suffix == ".npz":
        with np.load(path) as data:
            return dict(data)
    if path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return _read_torch_file(path)
    raise ValueError(
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
