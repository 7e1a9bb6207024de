"""Small constructors of config blocks, shared by the configs: each returns one whole block (a
ConfigDict or a dict) whose keys are its keyword names, so that a key reads in the config file as it
is overridden (`common.data(global_batch_size=8, ...)` is what `--config.data.global_batch_size=8`
sets). Every value is an argument without a default, given in the config file, so that a config
shows each value a reader checks against the paper; these functions only document the keys and
build the placeholders (`None` values a flag may set). `ssync_on` reads a config's variant.
"""

import ml_collections


def data(
    name: str,
    *,
    image_size: ml_collections.FieldReference,
    chunk_length: int,
    normalization: str,
    bicubic: str,
    eval_resolution: str,
    global_batch_size: int,
    eval_batch_size: int,
    num_workers: int,
    prefetch_buffer_size: int,
    num_boxes: ml_collections.FieldReference,
    flip_prob: float,
    fields: tuple[str, ...],
    train_split: str,
    eval_split: str,
    data_dir: str | None,
    precomputed_features: str | None,
    keep_decoded: bool,
) -> ml_collections.ConfigDict:
    """The input pipeline (ssync_jax/data/pipeline.py).

    Args:
        name: TFDS name[/config][:version].
        image_size: the model input (height, width), a reference the model section shares.
        chunk_length: training frames per example (aligned windows of the video).
        normalization: "imagenet" | "zero_one" | "minus_one_one".
        bicubic: video resize kernel, "pil" (a = -0.5, antialiased) or "torch" (the authors').
        eval_resolution: score at the labels' own resolution ("dataset") or at the model input
            ("model_input", the authors').
        global_batch_size: over all hosts; must divide by the JAX process count.
        eval_batch_size: likewise; the last partial batch is padded (batch["valid"]).
        num_workers: grain worker processes; 0 = in the main process.
        prefetch_buffer_size: batches read ahead (per worker), one thread each.
        num_boxes: rows of "boxes", one per object slot: the model's num_slots - 1 (the first slot
            is the background's), a reference that follows the model section's.
        flip_prob: probability of a horizontal flip per training example.
        fields: carried per video: "video" plus any of "segmentations", "depth", "forward_flow",
            "backward_flow" (per pixel), "boxes" (first-frame object boxes, for box-conditioned slots).
        train_split: the split training reads (random aligned windows).
        eval_split: the split evaluation reads (whole videos, one pass); `--mode eval` with
            `--config.data.eval_split=test` scores the held-out split.
        data_dir: the TFDS data directory; None: TFDS's default (~/tensorflow_datasets).
        precomputed_features: pre-extracted frozen-backbone tokens to train from instead of frames
            (written by `python -m ssync_jax.tools.extract_features`); None runs the backbone every step.
        keep_decoded: keep each video decoded in memory after its first read (each reading process
            its own copy): for datasets that fit in memory, whose decoding otherwise dominates.
    """
    return ml_collections.ConfigDict(
        dict(
            name=name,
            data_dir=_placeholder(data_dir, str),
            train_split=train_split,
            eval_split=eval_split,
            image_size=image_size,
            chunk_length=chunk_length,
            normalization=normalization,
            flip_prob=flip_prob,
            bicubic=bicubic,
            eval_resolution=eval_resolution,
            fields=tuple(fields),
            global_batch_size=global_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            prefetch_buffer_size=prefetch_buffer_size,
            num_boxes=num_boxes,
            precomputed_features=_placeholder(precomputed_features, str),
            keep_decoded=keep_decoded,
        )
    )


def _placeholder(value, kind: type):
    """`value`, or a typed None that a `--config.KEY=VALUE` flag can set."""
    return ml_collections.config_dict.placeholder(kind) if value is None else value


def mlp_decoder(hidden_sizes: tuple[int, ...], target: str, patch_size: int) -> dict:
    """The SSync/VideoSAUR decoder: one MLP per slot and patch of the encoder's grid, reconstructing
    the backbone's features there (or each patch's p x p pixels of a per-pixel target,
    `ssync_jax/decoder_targets.py`)."""
    return dict(name="mlp", hidden_sizes=tuple(hidden_sizes), target=target, patch_size=patch_size)


def spatial_broadcast_decoder(
    resolution: tuple[int, int],
    features: tuple[int, ...],
    upsample: tuple[bool, ...],
    kernel_size: int,
    patch_size: int,
    target: str,
) -> dict:
    """SAVi's CNN decoder of a per-pixel target (`ssync_jax/decoder_targets.py`): "video" (RGB), "depth"
    (log(1 + depth)) or "flow" (forward flow, d_row and d_col); `patch_size` p > 1 reconstructs p x p
    patches per position."""
    return dict(
        name="spatial_broadcast",
        target=target,
        resolution=tuple(resolution),
        features=tuple(features),
        upsample=tuple(upsample),
        kernel_size=kernel_size,
        patch_size=patch_size,
    )


def ssync_on(variant: str) -> bool:
    """Whether a config variant trains with SSync's losses: True for "ssync", False for "base" (the
    same model without them); any other variant is an error naming both."""
    if variant not in ("ssync", "base"):
        raise ValueError(f"Unknown config variant {variant!r}; use 'ssync' (SSync on) or 'base' (SSync off).")
    return variant == "ssync"


def ssync(
    merge_iou_threshold: float, min_diff_boundary: int, min_same_boundary: int, max_diff_interior: int
) -> ml_collections.ConfigDict:
    """SSync's pseudo-label settings (`ssync_jax.objectives.ssync.pseudo_labels`): τ, n_bd, n_noise, n_nbd."""
    return ml_collections.ConfigDict(
        dict(
            merge_iou_threshold=merge_iou_threshold,
            min_diff_boundary=min_diff_boundary,
            min_same_boundary=min_same_boundary,
            max_diff_interior=max_diff_interior,
        )
    )


def adam(
    learning_rate: float, warmup_steps: int, final_lr_fraction: float, grad_clip_norm: float, b1: float, b2: float
) -> ml_collections.ConfigDict:
    """Adam with global-norm clipping, linear warm-up, exponential decay to `final_lr_fraction` at the end."""
    return ml_collections.ConfigDict(
        dict(
            learning_rate=learning_rate,
            warmup_steps=warmup_steps,
            final_lr_fraction=final_lr_fraction,
            grad_clip_norm=grad_clip_norm,
            b1=b1,
            b2=b2,
        )
    )


def evaluation(
    chunk_length: int,
    num_true_ids: int,
    fg_ari_without_foreground: str,
    params_checkpoint: str | None,
    protocol: str,
) -> ml_collections.ConfigDict:
    """Evaluation on whole videos (ssync_jax/evaluate.py).

    Args:
        chunk_length: frames per model call, the slots carried between calls.
        num_true_ids: the largest ground-truth id + 1 (background 0).
        fg_ari_without_foreground: frames (videos) without objects: "skip", or "one" (the authors').
        params_checkpoint: an orbax params checkpoint to evaluate instead of the workdir's (e.g. the
            authors' weights converted by `python -m ssync_jax.tools.import_torch_checkpoint`);
            `--mode eval` only. None: the workdir's.
        protocol: how training's evaluation and `--mode eval` score the masks: "config", this config's
            own (the labels where `data.eval_resolution` puts them, videos and frames without objects
            as `fg_ari_without_foreground` says), or a project's, one of `ssync_jax.evaluate.PROTOCOLS`
            ("ssync", "videosaur", "dinosaur", "dinosaur_movi", "savi", "savi_first_frame_dropped";
            `python -m ssync_jax.tools.score` scores them all at once).
    """
    return ml_collections.ConfigDict(
        dict(
            chunk_length=chunk_length,
            num_true_ids=num_true_ids,
            fg_ari_without_foreground=fg_ari_without_foreground,
            params_checkpoint=_placeholder(params_checkpoint, str),
            protocol=protocol,
        )
    )
