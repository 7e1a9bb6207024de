"""Models: encoders (DINOv2, SAVi CNNs), slot-attention corrector, predictor, initialisers, decoders."""
