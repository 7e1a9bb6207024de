"""Objectives: SSync pseudo-labels and losses, reconstruction, SlotContrast, SRL, the combinator.

- `ssync`: labels, slot merging, boundary/interior masks and the two SSync losses (the paper).
- `resample`: area-average a pixel decoder's alpha logits onto the encoder's patch grid.
- `reconstruction`: feature/pixel reconstruction MSE, the base loss.
- `slot_contrast`: SlotContrast's temporal slot-slot InfoNCE.
- `srl`: our reading of SRL's dense alignment, the quadratic baseline for comparisons.
- `total_loss`: `build_loss_fn(config.losses, config.ssync)`, the training objective.
All are pure, fixed-shape JAX functions, safe under jit and grad.
"""
