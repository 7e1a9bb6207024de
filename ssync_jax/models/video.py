"""The video model: encoder -> (corrector -> predictor) scanned over time -> decoder."""

import einops
import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax import decoder_targets


def _processor_step(
    processor: "Processor", predicted: jax.Array, features: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
    """One frame: correct the predicted slots with the frame's features, then predict the next frame's.

    Args:
        processor: The bound `Processor` whose corrector and predictor are used.
        predicted: [B, S, D] slots predicted for this frame (the scan's carry).
        features: [B, N, D_in] this frame's features.

    Returns:
        (next frame's predicted slots [B, S, D], (slots [B, S, D], attention [B, N, S], logits [B, N, S])).
    """
    slots, attention, logits = processor.corrector(predicted, features)
    return processor.predictor(slots), (slots, attention, logits)


class Processor(nn.Module):
    """The corrector -> predictor recurrence over time as one `nn.scan` (parameters shared over time).

    A video's first frame is corrected with `first_frame_iterations`; every later frame, including
    the first frame of a continuation chunk, with the corrector's own iteration count, so evaluating
    a long video in chunks with the returned state equals one pass over it.

    Attributes:
        corrector: `SlotAttention`.
        predictor: `TransformerPredictor`.
        first_frame_iterations: Corrector iterations on a video's first frame.
    """

    corrector: nn.Module
    predictor: nn.Module
    first_frame_iterations: int = 3

    def __call__(
        self, predicted: jax.Array, features: jax.Array, starts_video: bool
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
        """Args:
            predicted: [B, S, D] slots for the first frame of `features` (initial or carried state).
            features: [B, T, N, D_in] encoded frames.
            starts_video: Whether `features` begins at the video's first frame.

        Returns:
            Predicted slots for the frame after the last [B, S, D], and per frame
            (slots [B, T, S, D], attention [B, T, N, S], logits [B, T, N, S]).
        """
        outputs = []
        if starts_video:
            slots, attention, logits = self.corrector(predicted, features[:, 0], self.first_frame_iterations)
            predicted = self.predictor(slots)
            outputs.append(tuple(x[:, None] for x in (slots, attention, logits)))
            features = features[:, 1:]
        if features.shape[1]:
            scan = nn.scan(
                _processor_step, variable_broadcast="params", split_rngs={"params": False}, in_axes=1, out_axes=1
            )
            predicted, scanned = scan(self, predicted, features)
            outputs.append(scanned)
        return predicted, tuple(jnp.concatenate(parts, axis=1) for parts in zip(*outputs))


def pixel_patches(video: jax.Array, patch_size: int) -> jax.Array:
    """Rearranges frames into non-overlapping p x p patches (space-to-depth).

    Args:
        video: [B, T, H, W, C] with H and W multiples of `patch_size`.
        patch_size: p; 1 leaves the frames as they are.

    Returns:
        [B, T, H/p, W/p, p*p*C], each patch's pixels in row-major order, channels last.
    """
    height, width = video.shape[2:4]
    if height % patch_size or width % patch_size:
        raise ValueError(f"Frames of {height}x{width} do not split into {patch_size}x{patch_size} patches")
    return einops.rearrange(video, "b t (h p) (w q) c -> b t h w (p q c)", p=patch_size, q=patch_size)


class VideoModel(nn.Module):
    """SAVi-style object-centric video model (the SSync/VideoSAUR architecture for feature targets).

    Attributes:
        initializer: Gives the first frame's slots from the batch size (and conditioning).
        patch_grid: (h, w) of the encoder's patch grid, N = h * w (`build_model` reads it off the
            backbone); the maps come out on it.
        encoder: `FrameEncoder`.
        processor: `Processor`.
        decoder: `MLPDecoder` (one MLP per slot and patch) or `SpatialBroadcastDecoder` (a CNN per slot).
        target: What the decoder reconstructs, a name of `ssync_jax.decoder_targets.TARGETS`: "features" (the
            backbone's tokens), "video" (the frames), or a per-pixel field the batch carries beside
            them (`field` of the call), e.g. "depth", "flow".
        target_patch_size: For per-pixel targets: p > 1 reconstructs p x p patches, the target
            rearranged to [B, T, H/p, W/p, p*p*C] (a decoder on the encoder's patch grid instead of
            full resolution; flattened to [B, T, N, p*p*C] for the MLP decoder).
    """

    initializer: nn.Module
    encoder: nn.Module
    processor: Processor
    decoder: nn.Module
    patch_grid: tuple[int, int]
    target: str = "features"
    target_patch_size: int = 1

    def __call__(
        self,
        video: jax.Array | None = None,
        conditioning: jax.Array | None = None,
        state: jax.Array | None = None,
        *,
        tokens: jax.Array | None = None,
        field: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Args:
            video: [B, T, H, W, 3] frames, normalised as the encoder expects.
            conditioning: Initializer input, e.g. first-frame boxes [B, S-1, 4]; unused when `state` is given.
            state: [B, S, D] from a previous call on the preceding frames; None starts a new video.
            tokens: [B, T, N, C] instead of `video`: the frozen backbone's tokens of the frames, extracted
                beforehand (`ssync_jax.tools.extract_features`); only for feature targets.
            field: [B, T, H, W, C] the per-pixel field a "depth" or "flow" model reconstructs (the
                batch's "depth" or "forward_flow"); without it such a model returns no `target`
                (evaluation and inference need none).

        Returns:
            slots [B, T, S, D]; enc_attn and enc_logits [B, T, h, w, S] on the encoder's patch grid
            (slot attention's softmax over slots and logits, last iteration); dec_masks and dec_logits
            [B, T, h', w', S] on the decoder's grid (the patch grid for the MLP decoder);
            reconstruction [B, T, N, F] or [B, T, H, W, C]; hard_reconstruction (the same with each
            position decoded by its argmax slot alone); target (same shape as reconstruction);
            state [B, S, D] to continue with the following frames.
        """
        target = decoder_targets.get(self.target)
        if tokens is not None and target.field is not None:
            raise ValueError(
                "Pre-extracted tokens cannot train a model that reconstructs the frames; use "
                "config.model.decoder.name='mlp' (feature targets) or train on video."
            )
        features, tokens = self.encoder(video, tokens)  # [B, T, N, D_in], [B, T, N, C]
        batch, frames = features.shape[:2]
        starts_video = state is None
        if starts_video:
            state = self.initializer(batch, conditioning)  # [B, S, D]
        state, (slots, attention, logits) = self.processor(state, features, starts_video)
        num_slots, slot_dim = slots.shape[2:]
        decoded = self.decoder(slots.reshape(batch * frames, num_slots, slot_dim))
        decoded = {k: v.reshape(batch, frames, *v.shape[1:]) for k, v in decoded.items()}
        on_grid = (batch, frames, *self.patch_grid, num_slots)
        dec_masks, dec_logits = decoded["masks"], decoded["alpha_logits"]  # [B, T, N, S] or [B, T, H, W, S]
        if dec_masks.ndim == 4:
            dec_masks, dec_logits = dec_masks.reshape(on_grid), dec_logits.reshape(on_grid)
        outputs = dict(
            slots=slots,
            enc_attn=attention.reshape(on_grid),
            enc_logits=logits.reshape(on_grid),
            dec_masks=dec_masks,
            dec_logits=dec_logits,
            reconstruction=decoded["reconstruction"],
            hard_reconstruction=decoded["hard_reconstruction"],
            state=state,
        )
        values = {None: tokens, "video": video}.get(target.field, field)
        if values is not None:
            if target.field is not None:
                values = pixel_patches(target.transform(values), self.target_patch_size)  # [B, T, h, w, F]
            if target.field is not None and outputs["reconstruction"].ndim == 4:  # The MLP decoder's [B, T, N, F].
                values = values.reshape(*values.shape[:2], -1, values.shape[-1])
            outputs["target"] = values
        return outputs
