"""Maps the authors' PyTorch (Lightning) state dict onto our `VideoModel` parameter tree.

Pure numpy: reading the `.ckpt` pickle (which needs torch) happens in
`ssync_jax.tools.import_torch_checkpoint`. PyTorch Linear weights are [out, in]; ours [in, out].
"""

import numpy as np

from ssync_jax.models import dinov2_weights

_PREFIXES = ("model.", "models.", "module.")
_TIMM_BACKBONE_KEYS = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.", "mask_token", "reg_token")
BACKBONE_PREFIX = "encoder.module.backbone.model."


class _Reader:
    """Takes tensors from the state dict by name, remembering which were used."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self.used: set[str] = set()

    def take(self, key: str) -> np.ndarray:
        if key not in self.state:
            raise KeyError(f"the checkpoint lacks {key!r}; is it an SSync/VideoSAUR model with this config?")
        self.used.add(key)
        return np.asarray(self.state[key], np.float32)

    def has(self, key: str) -> bool:
        return key in self.state

    def dense(self, prefix: str, bias: bool = True) -> dict:
        params = {"kernel": self.take(f"{prefix}.weight").T}
        if bias:
            params["bias"] = self.take(f"{prefix}.bias")
        return params

    def norm(self, prefix: str) -> dict:
        return {"scale": self.take(f"{prefix}.weight"), "bias": self.take(f"{prefix}.bias")}

    def mlp(self, prefix: str, linear_indices: tuple[int, ...], norm_index: int | None = None) -> dict:
        """A torch `nn.Sequential` MLP (`layers.i`) as our `MLP` (`norm`, `dense_j`)."""
        params = {f"dense_{j}": self.dense(f"{prefix}.layers.{i}") for j, i in enumerate(linear_indices)}
        if norm_index is not None:
            params["norm"] = self.norm(f"{prefix}.layers.{norm_index}")
        return params


def torch_gru_to_flax(weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray) -> dict:
    """PyTorch GRUCell weights (gates stacked r, z, n; [3D, D_in], [3D, D]) as Flax GRUCell params.

    Flax has no hidden bias for the reset and update gates; PyTorch adds the input and hidden biases
    of those gates before the sigmoid, so their sum is the same function. The candidate's hidden
    bias sits inside r * (W_hn h + b_hn) and is kept apart.
    """
    w_ir, w_iz, w_in = np.split(weight_ih, 3)
    w_hr, w_hz, w_hn = np.split(weight_hh, 3)
    b_ir, b_iz, b_in = np.split(bias_ih, 3)
    b_hr, b_hz, b_hn = np.split(bias_hh, 3)
    return {
        "ir": {"kernel": w_ir.T, "bias": b_ir + b_hr},
        "iz": {"kernel": w_iz.T, "bias": b_iz + b_hz},
        "in": {"kernel": w_in.T, "bias": b_in},
        "hr": {"kernel": w_hr.T},
        "hz": {"kernel": w_hz.T},
        "hn": {"kernel": w_hn.T, "bias": b_hn},
    }


def authors_to_flax(
    state: dict[str, np.ndarray], num_predictor_blocks: int = 1, num_decoder_layers: int = 4
) -> tuple[dict, list[str]]:
    """Converts the authors' MOVi state dict to our `VideoModel` params.

    Args:
        state: Flat name -> array, keys like `initializer.slots` [1, S, D],
            `encoder.module.output_transform.layers.{0,1,3}.*`, `processor.module.corrector.*`,
            `processor.module.predictor.blocks.N.*`, `decoder.module.pos_emb` [1, 1, N, D],
            `decoder.module.mlp.layers.{0,2,4,6}.*`, and the timm DINOv2 under
            `encoder.module.backbone.model.*`.
        num_predictor_blocks: Transformer blocks of the predictor.
        num_decoder_layers: Linear layers of the MLP decoder (hidden layers + output).

    Returns:
        (params, unused keys of `state`, sorted).
    """
    state = {_strip_model_prefix(k): v for k, v in state.items()}
    r = _Reader(state)
    corrector = "processor.module.corrector"
    params = {
        "initializer": {"slots": r.take("initializer.slots").reshape(r.state["initializer.slots"].shape[-2:])},
        "encoder": {
            "output_transform": r.mlp("encoder.module.output_transform", (1, 3), norm_index=0),
        },
        "processor": {
            "corrector": {
                "norm_features": r.norm(f"{corrector}.norm_features"),
                "norm_slots": r.norm(f"{corrector}.norm_slots"),
                "to_k": r.dense(f"{corrector}.to_k", bias=False),
                "to_v": r.dense(f"{corrector}.to_v", bias=False),
                "to_q": r.dense(f"{corrector}.to_q", bias=False),
                "gru": torch_gru_to_flax(
                    *(r.take(f"{corrector}.gru.{n}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                ),
                "mlp": r.mlp(f"{corrector}.mlp", (1, 3), norm_index=0),
            },
            "predictor": _predictor(r, num_predictor_blocks),
        },
        "decoder": {
            "pos_emb": r.take("decoder.module.pos_emb").reshape(r.state["decoder.module.pos_emb"].shape[-2:]),
            "mlp": r.mlp("decoder.module.mlp", tuple(range(0, 2 * num_decoder_layers, 2))),
        },
    }
    backbone = {
        key[len(BACKBONE_PREFIX) :]: value
        for key, value in state.items()
        if key.startswith(BACKBONE_PREFIX) and key[len(BACKBONE_PREFIX) :].startswith(_TIMM_BACKBONE_KEYS)
    }
    if backbone:
        architecture = dinov2_weights.timm_architecture(backbone)
        params["encoder"]["backbone"] = dinov2_weights.timm_to_flax(backbone, architecture["depth"])
        r.used.update(BACKBONE_PREFIX + key for key in backbone)
    return params, sorted(set(state) - r.used)


def _strip_model_prefix(key: str) -> str:
    """Lightning modules may hold the model as `model.` / `models.`; DDP wraps add `module.`."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _predictor(r: _Reader, num_blocks: int) -> dict:
    params = {}
    for i in range(num_blocks):
        block = f"processor.module.predictor.blocks.{i}"
        if r.has(f"{block}.self_attn.in_proj_weight"):
            qkv = {
                "kernel": r.take(f"{block}.self_attn.in_proj_weight").T,
                "bias": r.take(f"{block}.self_attn.in_proj_bias"),
            }
        else:
            qkv = r.dense(f"{block}.self_attn.qkv")
        params[f"block_{i}_norm1"] = r.norm(f"{block}.norm1")
        params[f"block_{i}_attn"] = {"qkv": qkv, "proj": r.dense(f"{block}.self_attn.out_proj")}
        params[f"block_{i}_norm2"] = r.norm(f"{block}.norm2")
        params[f"block_{i}_linear1"] = r.dense(f"{block}.linear1")
        params[f"block_{i}_linear2"] = r.dense(f"{block}.linear2")
    return params
