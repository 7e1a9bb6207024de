"""Data: the MOVi-format scene generator, TFDS builders, MOVi conversion and the grain input pipeline."""
