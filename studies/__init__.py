"""Learning studies: research on what SSync does in regimes a CPU can train, apart from the product.

`python -m studies.learning --study NAME --root DIR` trains a named study of `studies/registry.py`
(docs/RESULTS.md §1 has their outcomes); `studies.gradient_balance` and `studies.premise_floor`
measure a trained model's loss balance and a grid's SSync selections on the ground truth. The study
configs are in `studies/configs/`; the recipes are in `configs/`, speed and memory in `benchmarks/`.
"""
