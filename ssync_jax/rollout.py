"""Running a trained model over whole videos: chunks of frames, the slots carried from one to the next.

Evaluation, inference, the TensorBoard images and the visualiser all go through `Rollout`, so they
see the same frames with the same slots. A video is cut into chunks of `chunk_length` frames; the
predicted slots after each chunk seed the next, which equals one pass over the whole video (see
`ssync_jax.models.video.Processor`) at a fraction of the memory. The model's maps come out on their
grids (`VideoModel`): slot attention `enc_attn`/`enc_logits` [B, t, h, w, S] on the encoder's patch
grid, the decoder's `dec_masks`/`dec_logits` [B, t, h', w', S] on its own.

    rollout = Rollout(model, chunk_length=6, seed=config.seed)
    for frames, outputs in rollout.chunks(params, video):   # video [B, T, H, W, 3]
        ...                                                 # outputs of frames `frames`

With `pad=True` the last chunk is padded to a whole chunk by repeating the last frame (the model is
causal in time, so frames after the video change nothing before them) and the padded frames are cut
from its outputs: every video of one frame size then runs on the same two compiled programs (first
chunk, continuation), whatever its length.
"""

from collections.abc import Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax import metrics

Outputs = dict[str, jax.Array]


class Rollout:
    """A model run chunk by chunk over videos; the chunk function is compiled once per input shape.

    Attributes:
        model: the video model.
        chunk_length: frames per chunk.
        seed: fixes the "slots" RNG stream (Gaussian slot initialisers), the same for every chunk.
    """

    def __init__(self, model: nn.Module, chunk_length: int, seed: int):
        if chunk_length < 1:
            raise ValueError(f"config.eval.chunk_length must be at least 1, got {chunk_length}.")
        self.model = model
        self.chunk_length = int(chunk_length)
        self.seed = seed
        self._run = jax.jit(self._chunk)

    def _chunk(self, params, video: jax.Array, state: jax.Array | None, conditioning: jax.Array | None) -> Outputs:
        rngs = {"slots": jax.random.key(self.seed)}
        return self.model.apply({"params": params}, video, conditioning, state, rngs=rngs)

    def chunks(
        self,
        params,
        video: jax.Array,
        pad: bool = False,
        then: Callable[[Outputs], Mapping[str, jax.Array]] | None = None,
        conditioning: jax.Array | None = None,
    ) -> Iterator[tuple[slice, Outputs]]:
        """The model's outputs chunk after chunk.

        Args:
            params: the model's params.
            video: `[B, T, H, W, 3]` model input (a jax or numpy array; numpy chunks are sent one by one).
            pad: pad the last chunk to `chunk_length` frames (see the module docstring).
            then: applied to each chunk's outputs before padded frames are cut, e.g. a jitted resize
                of the masks: with `pad`, every chunk then reaches it with the same shapes. Its
                per-frame results must keep the frame axis second, [B, t, ...].
            conditioning: the slot initialiser's input for the first frame, e.g. first-frame boxes
                [B, S-1, 4] (`ssync_jax.models.initializers.BoxConditionedSlots`); None for learned slots.

        Yields:
            (the frames of `video` the outputs are for, the outputs for them: the model's, or what
            `then` made of them; device arrays).
        """
        num_frames = video.shape[1]
        state = None
        for start in range(0, num_frames, self.chunk_length):
            chunk = video[:, start : start + self.chunk_length]  # [B, t, H, W, 3]
            real = chunk.shape[1]
            if pad and real < self.chunk_length:
                last = jnp.repeat(chunk[:, -1:], self.chunk_length - real, axis=1)
                chunk = jnp.concatenate([chunk, last], axis=1)
            outputs = self._run(params, chunk, state, conditioning if state is None else None)
            state = outputs["state"]
            results = dict(then(outputs)) if then is not None else outputs
            yield slice(start, start + real), _first_frames(results, real)


def _first_frames(outputs: Mapping[str, jax.Array], count: int) -> Outputs:
    """Per-frame outputs cut to the first `count` frames; the carried state as it is."""
    return {name: value if name == "state" else value[:, :count] for name, value in outputs.items()}


def segment(dec_masks: jax.Array, enc_attn: jax.Array, size: tuple[int, int]) -> dict[str, jax.Array]:
    """The predicted segmentations of a chunk at `size`, as the paper scores them (jit with `size` static).

    Args:
        dec_masks: `[B, t, h', w', S]` the decoder's masks.
        enc_attn: `[B, t, h, w, S]` slot attention.
        size: (H, W) of the segmentations (the labels', or the input video's).

    Returns:
        "dec_ids" and "enc_ids", int32 `[B, t, H, W]`: the slot of each pixel after a bilinear resize of
        the masks (`ssync_jax.metrics.masks_to_ids`).
    """
    return {"dec_ids": metrics.masks_to_ids(dec_masks, size), "enc_ids": metrics.masks_to_ids(enc_attn, size)}
