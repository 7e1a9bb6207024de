"""Objectives: SSync pseudo-labels and losses, reconstruction, SlotContrast, SRL baseline, the loss combinator."""
