"""DINOv2 weights from Hugging Face directories, the hub, and timm state dicts, as Flax params.

Both formats are converted to timm's key names first (Hugging Face's separate q/k/v are fused), then
to the parameter tree of `dinov2.DinoV2ViT`. The final norm and the mask token are dropped.
"""

import json
import os
import re
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from ssync_jax import errors
from ssync_jax.models import dinov2
from ssync_jax.models.state_dict_io import read_state_dict

_HF_PREFIXES = ("dinov2.",)
# transformers >= 5 names the attention projections differently in memory; files on the hub keep the
# old names. Both are accepted.
_HF_ALIASES = {
    "attention.q_proj.": "attention.attention.query.",
    "attention.k_proj.": "attention.attention.key.",
    "attention.v_proj.": "attention.attention.value.",
    "attention.o_proj.": "attention.output.dense.",
}
_TIMM_IGNORED = ("norm.weight", "norm.bias", "mask_token")


def load(path_or_name: str | os.PathLike, num_heads: int | None = None) -> tuple[dict, dict]:
    """Reads DINOv2 weights from a directory, file or hub name.

    Args:
        path_or_name: Hugging Face directory, timm state-dict file, or hub name ("facebook/dinov2-small").
        num_heads: Heads per block for timm files (not recorded in them); default width // 64.

    Returns:
        (architecture kwargs of `DinoV2ViT`, params tree of numpy arrays).
    """
    path = locate(path_or_name)
    if path.is_dir():
        architecture, state = _read_hf_directory(path)
        return architecture, timm_to_flax(hf_to_timm(state), architecture["depth"])
    state = read_state_dict(path)
    architecture = timm_architecture(state, num_heads)
    return architecture, timm_to_flax(state, architecture["depth"])


def locate(path_or_name: str | os.PathLike) -> Path:
    """The local directory or file of DINOv2 weights: the path itself, or a hub name's download.

    Raises:
        InputNotFoundError: no such path, or a hub name that cannot be downloaded (offline), with the
            flag to use instead.
    """
    path = Path(path_or_name)
    if path.exists():
        return path
    name = str(path_or_name)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:  # A path, not a hub name ("owner/model").
        raise errors.InputNotFoundError(
            f"No DINOv2 weights at {name}: --config.model.encoder.weights takes a Hugging Face directory "
            "(config.json + model.safetensors), a timm state-dict file, or a hub name such as facebook/dinov2-small."
        )
    return _download_from_hub(name)


def _download_from_hub(name: str) -> Path:
    try:
        import huggingface_hub
    except ImportError as error:
        raise errors.InputNotFoundError(
            f"{name!r} is neither a local directory nor a file, and downloading it from the Hugging Face hub "
            "needs `pip install huggingface_hub`. Offline, download config.json and model.safetensors of "
            f"https://huggingface.co/{name} elsewhere into a directory DIR and pass --config.model.encoder.weights=DIR."
        ) from error
    try:
        return Path(huggingface_hub.snapshot_download(name, allow_patterns=["config.json", "model.safetensors"]))
    except Exception as error:
        raise errors.InputNotFoundError(
            f"Could not download {name!r} from the Hugging Face hub ({type(error).__name__}: {error}). Offline, "
            f"copy config.json and model.safetensors of https://huggingface.co/{name} into a directory DIR and "
            "pass --config.model.encoder.weights=DIR (a timm state-dict file works too)."
        ) from error


def _read_hf_directory(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    config_file = path / "config.json"
    if not config_file.exists():
        raise errors.InputNotFoundError(f"{path} has no config.json; a Hugging Face DINOv2 directory needs it")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != "dinov2":
        raise errors.ConfigError(f"{config_file}: model_type {config.get('model_type')!r} is not 'dinov2'")
    if config.get("use_swiglu_ffn"):
        raise errors.ConfigError(f"{config_file}: SwiGLU MLPs (ViT-g) are not supported; use ViT-S/B/L")
    weights = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).exists()), None)
    if weights is None:
        raise errors.InputNotFoundError(f"{path} has neither model.safetensors nor pytorch_model.bin")
    patch_size = config.get("patch_size", 14)
    architecture = dict(
        embed_dim=config["hidden_size"],
        depth=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        patch_size=patch_size,
        pretrained_grid=config.get("image_size", 518) // patch_size,
        mlp_ratio=config.get("mlp_ratio", 4),
    )
    return architecture, read_state_dict(weights)


def hf_to_timm(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Renames a Hugging Face `Dinov2Model` state dict to timm's keys, fusing q/k/v.

    Args:
        state: Keys like `embeddings.cls_token`, `encoder.layer.N.attention.attention.query.weight`.

    Returns:
        Keys like `cls_token`, `blocks.N.attn.qkv.weight` (weights stay [out, in]).
    """
    state = {_strip_prefix(k): v for k, v in state.items()}
    out = {
        "cls_token": state["embeddings.cls_token"],
        "pos_embed": state["embeddings.position_embeddings"],
        "patch_embed.proj.weight": state["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": state["embeddings.patch_embeddings.projection.bias"],
    }
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k)))
    renames = {
        "norm1": "norm1",
        "norm2": "norm2",
        "attention.output.dense": "attn.proj",
        "mlp.fc1": "mlp.fc1",
        "mlp.fc2": "mlp.fc2",
    }
    for i in range(depth):
        hf, timm = f"encoder.layer.{i}.", f"blocks.{i}."
        for hf_name, timm_name in renames.items():
            for kind in ("weight", "bias"):
                out[f"{timm}{timm_name}.{kind}"] = state[f"{hf}{hf_name}.{kind}"]
        for kind in ("weight", "bias"):
            out[f"{timm}attn.qkv.{kind}"] = np.concatenate(
                [state[f"{hf}attention.attention.{p}.{kind}"] for p in ("query", "key", "value")], axis=0
            )
        out[f"{timm}ls1.gamma"] = state[f"{hf}layer_scale1.lambda1"]
        out[f"{timm}ls2.gamma"] = state[f"{hf}layer_scale2.lambda1"]
    return out


def _strip_prefix(key: str) -> str:
    for prefix in _HF_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    for new, old in _HF_ALIASES.items():
        key = key.replace(new, old)
    return key


def timm_architecture(state: dict[str, np.ndarray], num_heads: int | None = None) -> dict:
    """Infers `DinoV2ViT` kwargs from a timm state dict's shapes (heads default to width // 64)."""
    missing = [k for k in ("cls_token", "pos_embed", "patch_embed.proj.weight") if k not in state]
    if missing:
        raise KeyError(f"not a timm ViT state dict: missing {missing} (found e.g. {sorted(state)[:5]})")
    if "reg_token" in state:
        raise errors.ConfigError("DINOv2 with register tokens is not supported; use the plain DINOv2 weights")
    embed_dim = state["cls_token"].shape[-1]
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    grid = int(round((state["pos_embed"].shape[1] - 1) ** 0.5))
    fc1_width = state["blocks.0.mlp.fc1.weight"].shape[0]
    return dict(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads or max(1, embed_dim // 64),
        patch_size=state["patch_embed.proj.weight"].shape[-1],
        pretrained_grid=grid,
        mlp_ratio=fc1_width / embed_dim,
    )


def timm_to_flax(state: dict[str, np.ndarray], depth: int) -> dict:
    """Converts a timm DINOv2 state dict to the `DinoV2ViT` parameter tree.

    Args:
        state: timm keys (`cls_token`, `pos_embed`, `patch_embed.proj.*`, `blocks.N.*`, `norm.*`);
            torch Linear weights are [out, in], the patch conv [D, 3, p, p].
        depth: Number of blocks.

    Returns:
        Nested dict of float32 numpy arrays.
    """
    used = set(_TIMM_IGNORED)

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise KeyError(f"DINOv2 state dict lacks {key!r}")
        used.add(key)
        return np.asarray(state[key], dtype=np.float32)

    def dense(prefix: str) -> dict:
        return {"kernel": take(f"{prefix}.weight").T, "bias": take(f"{prefix}.bias")}

    def norm(prefix: str) -> dict:
        return {"scale": take(f"{prefix}.weight"), "bias": take(f"{prefix}.bias")}

    params = {
        "patch_embed": {
            "kernel": take("patch_embed.proj.weight").transpose(2, 3, 1, 0),  # [p, p, 3, D]
            "bias": take("patch_embed.proj.bias"),
        },
        "cls_token": take("cls_token").reshape(1, 1, -1),
        "pos_embed": take("pos_embed"),
    }
    for i in range(depth):
        b = f"blocks.{i}"
        params[f"block_{i}"] = {
            "norm1": norm(f"{b}.norm1"),
            "attn": {"qkv": dense(f"{b}.attn.qkv"), "proj": dense(f"{b}.attn.proj")},
            "ls1": {"gamma": take(f"{b}.ls1.gamma")},
            "norm2": norm(f"{b}.norm2"),
            "fc1": dense(f"{b}.mlp.fc1"),
            "fc2": dense(f"{b}.mlp.fc2"),
            "ls2": {"gamma": take(f"{b}.ls2.gamma")},
        }
    unused = sorted(set(state) - used)
    if unused:
        raise errors.ConfigError(f"DINOv2 state dict has keys this architecture does not use: {unused[:8]}")
    return params


def flax_to_timm(params: dict) -> dict[str, np.ndarray]:
    """The inverse of `timm_to_flax`: a `DinoV2ViT` params tree as a timm state dict (no final norm).

    Args:
        params: `DinoV2ViT` params (numpy or jax arrays).

    Returns:
        timm keys -> float32 arrays, Linear weights [out, in], the patch conv [D, 3, p, p].
    """

    def array(x) -> np.ndarray:
        return np.asarray(x, np.float32)

    state = {
        "cls_token": array(params["cls_token"]).reshape(1, 1, -1),
        "pos_embed": array(params["pos_embed"]),
        "patch_embed.proj.weight": array(params["patch_embed"]["kernel"]).transpose(3, 2, 0, 1),
        "patch_embed.proj.bias": array(params["patch_embed"]["bias"]),
    }
    depth = sum(1 for key in params if key.startswith("block_"))
    for i in range(depth):
        block, b = params[f"block_{i}"], f"blocks.{i}"
        for ours, theirs in (("qkv", "attn.qkv"), ("proj", "attn.proj")):
            state[f"{b}.{theirs}.weight"] = array(block["attn"][ours]["kernel"]).T
            state[f"{b}.{theirs}.bias"] = array(block["attn"][ours]["bias"])
        for ours, theirs in (("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")):
            state[f"{b}.{theirs}.weight"] = array(block[ours]["kernel"]).T
            state[f"{b}.{theirs}.bias"] = array(block[ours]["bias"])
        for norm in ("norm1", "norm2"):
            state[f"{b}.{norm}.weight"] = array(block[norm]["scale"])
            state[f"{b}.{norm}.bias"] = array(block[norm]["bias"])
        for scale in ("ls1", "ls2"):
            state[f"{b}.{scale}.gamma"] = array(block[scale]["gamma"])
    return state


def variant_architecture(variant: str) -> dict:
    """`DinoV2ViT` kwargs of a released variant name ("vit_s14", "vit_b14", "vit_l14")."""
    if variant not in dinov2.VARIANTS:
        raise errors.ConfigError(f"unknown DINOv2 variant {variant!r}; choose one of {sorted(dinov2.VARIANTS)}")
    embed_dim, depth, num_heads = dinov2.VARIANTS[variant]
    return dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads, patch_size=14, pretrained_grid=37)


def from_pretrained(
    path_or_name: str | os.PathLike,
    image_size: int | tuple[int, int] = 336,
    dtype: Any = jnp.float32,
    num_heads: int | None = None,
) -> tuple[dinov2.DinoV2ViT, dict]:
    """Builds a DINOv2 backbone and loads its pretrained weights.

    Args:
        path_or_name: A Hugging Face directory (`config.json` + `model.safetensors`), a Hugging Face
            hub name such as "facebook/dinov2-small" (needs `huggingface_hub` and internet, or its
            cache), or a timm state-dict file (`.safetensors`, or `.pth`/`.bin` with torch installed).
        image_size: Input size the model will be used at; checked to be a multiple of the patch size.
        dtype: Computation dtype of the returned module (parameters stay float32).
        num_heads: Heads per block for a timm file whose width is not a released variant's
            (timm files do not record it); default: width // 64, as in all DINOv2 models.

    Returns:
        (model, params) with `model.apply({"params": params}, images)` -> [B, N, D].
    """
    architecture, params = load(path_or_name, num_heads=num_heads)
    model = dinov2.DinoV2ViT(**architecture, dtype=dtype)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if size[0] % model.patch_size or size[1] % model.patch_size:
        raise errors.ConfigError(f"image_size {size} is not a multiple of the patch size {model.patch_size}")
    return model, params
