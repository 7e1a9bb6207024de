"""The authors' PyTorch (Lightning) state dict <-> our `VideoModel` parameter tree, both ways.

One table (`_layout`) says where each of their tensors lives in our tree and how it is laid out;
`authors_to_flax` reads it one way, `flax_to_authors` the other, so imports and exports cannot
drift apart. Pure numpy: reading a `.ckpt` pickle (which needs torch) happens in
`ssync_jax.tools.import_torch_checkpoint`.

Layouts: PyTorch Linear weights are [out, in], ours [in, out]; their slots are [1, S, D] and
decoder position embedding [1, 1, N, D], ours [S, D] and [N, D]. Their GRUCell keeps an input and
a hidden bias for the reset and update gates, which only ever appear summed: we keep the sum
(Flax's GRU layout). Exporting puts the sum into their input bias and zeros into the hidden one,
the same function; a gradient exported with `gradient=True` goes to both, since ∂L/∂b_ih =
∂L/∂b_hh = ∂L/∂(b_ih + b_hh) for those gates.
"""

from typing import NamedTuple

import numpy as np

from ssync_jax.models import dinov2_weights

_PREFIXES = ("model.", "models.", "module.")
_TIMM_BACKBONE_KEYS = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.", "mask_token", "reg_token")
BACKBONE_PREFIX = "encoder.module.backbone.model."
_CORRECTOR = "processor.module.corrector"
_GRU_GATES = ("r", "z", "n")


class _Entry(NamedTuple):
    """One of their tensors: its name, our path, and how the layouts differ."""

    theirs: str
    ours: tuple[str, ...]
    kind: str  # "linear" (transpose), "same", or "squeeze" (their leading 1-axes dropped)


def _linear(theirs: str, ours: tuple[str, ...], bias: bool = True) -> list[_Entry]:
    entries = [_Entry(f"{theirs}.weight", (*ours, "kernel"), "linear")]
    return entries + ([_Entry(f"{theirs}.bias", (*ours, "bias"), "same")] if bias else [])


def _norm(theirs: str, ours: tuple[str, ...]) -> list[_Entry]:
    return [_Entry(f"{theirs}.weight", (*ours, "scale"), "same"), _Entry(f"{theirs}.bias", (*ours, "bias"), "same")]


def _mlp(theirs: str, ours: tuple[str, ...], linear_indices: tuple[int, ...], norm_index: int | None) -> list[_Entry]:
    """A torch `nn.Sequential` MLP (`layers.i`) as our `MLP` (`norm`, `dense_j`)."""
    entries = _norm(f"{theirs}.layers.{norm_index}", (*ours, "norm")) if norm_index is not None else []
    for j, i in enumerate(linear_indices):
        entries += _linear(f"{theirs}.layers.{i}", (*ours, f"dense_{j}"))
    return entries


def _layout(num_predictor_blocks: int, num_decoder_layers: int) -> list[_Entry]:
    """Every non-backbone, non-GRU tensor of the authors' SSync/VideoSAUR model with an MLP decoder."""
    corrector = ("processor", "corrector")
    entries = [_Entry("initializer.slots", ("initializer", "slots"), "squeeze")]
    entries += _mlp("encoder.module.output_transform", ("encoder", "output_transform"), (1, 3), 0)
    entries += _norm(f"{_CORRECTOR}.norm_features", (*corrector, "norm_features"))
    entries += _norm(f"{_CORRECTOR}.norm_slots", (*corrector, "norm_slots"))
    for name in ("to_k", "to_v", "to_q"):
        entries += _linear(f"{_CORRECTOR}.{name}", (*corrector, name), bias=False)
    entries += _mlp(f"{_CORRECTOR}.mlp", (*corrector, "mlp"), (1, 3), 0)
    for i in range(num_predictor_blocks):
        block, ours = f"processor.module.predictor.blocks.{i}", ("processor", "predictor")
        entries += _norm(f"{block}.norm1", (*ours, f"block_{i}_norm1"))
        entries += _linear(f"{block}.self_attn.qkv", (*ours, f"block_{i}_attn", "qkv"))
        entries += _linear(f"{block}.self_attn.out_proj", (*ours, f"block_{i}_attn", "proj"))
        entries += _norm(f"{block}.norm2", (*ours, f"block_{i}_norm2"))
        entries += _linear(f"{block}.linear1", (*ours, f"block_{i}_linear1"))
        entries += _linear(f"{block}.linear2", (*ours, f"block_{i}_linear2"))
    entries.append(_Entry("decoder.module.pos_emb", ("decoder", "pos_emb"), "squeeze"))
    entries += _mlp("decoder.module.mlp", ("decoder", "mlp"), tuple(range(0, 2 * num_decoder_layers, 2)), None)
    return entries


def torch_gru_to_flax(weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray) -> dict:
    """PyTorch GRUCell weights (gates stacked r, z, n; [3D, D_in], [3D, D]) as our `GRUCell` params.

    Flax's layout has no hidden bias for the reset and update gates; PyTorch adds the input and
    hidden biases of those gates before the sigmoid, so their sum is the same function. The
    candidate's hidden bias sits inside r * (W_hn h + b_hn) and is kept apart.
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


def flax_gru_to_torch(gru: dict, gradient: bool = False) -> dict[str, np.ndarray]:
    """The inverse of `torch_gru_to_flax`: {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}.

    Args:
        gru: our GRU params (or gradients) {"ir", "iz", "in", "hr", "hz", "hn"}.
        gradient: map a gradient (the summed r/z bias's gradient goes to both biases) instead of
            parameters (the sum goes to the input bias, zeros to the hidden one).
    """
    summed = [np.asarray(gru[f"i{g}"]["bias"]) for g in ("r", "z")]
    hidden = summed if gradient else [np.zeros_like(b) for b in summed]
    return {
        "weight_ih": np.concatenate([np.asarray(gru[f"i{g}"]["kernel"]).T for g in _GRU_GATES]),
        "weight_hh": np.concatenate([np.asarray(gru[f"h{g}"]["kernel"]).T for g in _GRU_GATES]),
        "bias_ih": np.concatenate([*summed, np.asarray(gru["in"]["bias"])]),
        "bias_hh": np.concatenate([*hidden, np.asarray(gru["hn"]["bias"])]),
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
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise KeyError(f"the checkpoint lacks {key!r}; is it an SSync/VideoSAUR model with this config?")
        used.add(key)
        return np.asarray(state[key], np.float32)

    _rename_torch_attention(state, num_predictor_blocks)
    params: dict = {}
    for entry in _layout(num_predictor_blocks, num_decoder_layers):
        value = take(entry.theirs)
        if entry.kind == "linear":
            value = value.T
        elif entry.kind == "squeeze":
            value = value.reshape(value.shape[-2:])
        _set(params, entry.ours, value)
    gru = {name: take(f"{_CORRECTOR}.gru.{name}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    params["processor"]["corrector"]["gru"] = torch_gru_to_flax(**gru)
    backbone = {
        key[len(BACKBONE_PREFIX) :]: value
        for key, value in state.items()
        if key.startswith(BACKBONE_PREFIX) and key[len(BACKBONE_PREFIX) :].startswith(_TIMM_BACKBONE_KEYS)
    }
    if backbone:
        architecture = dinov2_weights.timm_architecture(backbone)
        params["encoder"]["backbone"] = dinov2_weights.timm_to_flax(backbone, architecture["depth"])
        used.update(BACKBONE_PREFIX + key for key in backbone)
    return params, sorted(set(state) - used)


def flax_to_authors(
    params: dict, num_predictor_blocks: int = 1, num_decoder_layers: int = 4, gradient: bool = False
) -> dict[str, np.ndarray]:
    """Our `VideoModel` params (or their gradients) under the authors' state-dict names and layouts.

    The DINOv2 backbone is written in timm's layout when `params["encoder"]` holds it.

    Args:
        params: our params tree (numpy or jax arrays).
        num_predictor_blocks: Transformer blocks of the predictor.
        num_decoder_layers: Linear layers of the MLP decoder.
        gradient: map gradients (see the module docstring for the GRU biases).

    Returns:
        Flat name -> float32 array, loadable into their model with `load_state_dict`.
    """
    state = {}
    for entry in _layout(num_predictor_blocks, num_decoder_layers):
        value = np.asarray(_get(params, entry.ours), np.float32)
        if entry.kind == "linear":
            value = value.T
        elif entry.kind == "squeeze":
            value = value.reshape((1,) * (2 if entry.theirs.endswith("pos_emb") else 1) + value.shape)
        state[entry.theirs] = value
    gru = flax_gru_to_torch(params["processor"]["corrector"]["gru"], gradient)
    state.update({f"{_CORRECTOR}.gru.{name}": value.astype(np.float32) for name, value in gru.items()})
    if "backbone" in params["encoder"]:
        timm = dinov2_weights.flax_to_timm(params["encoder"]["backbone"])
        state.update({BACKBONE_PREFIX + key: value for key, value in timm.items()})
    # Transposes are views; writers such as safetensors store the buffer as laid out in memory.
    return {name: np.ascontiguousarray(value) for name, value in state.items()}


def _rename_torch_attention(state: dict[str, np.ndarray], num_blocks: int) -> None:
    """`nn.MultiheadAttention` names (`in_proj_*`) as the authors' `Attention` ones (`qkv.*`), in place."""
    for i in range(num_blocks):
        attention = f"processor.module.predictor.blocks.{i}.self_attn"
        for kind in ("weight", "bias"):
            if f"{attention}.in_proj_{kind}" in state:
                state[f"{attention}.qkv.{kind}"] = state.pop(f"{attention}.in_proj_{kind}")


def _strip_model_prefix(key: str) -> str:
    """Lightning modules may hold the model as `model.` / `models.`; DDP wraps add `module.`."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _get(tree: dict, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree
