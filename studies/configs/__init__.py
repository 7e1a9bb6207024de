"""Study configs: the regimes of docs/RESULTS.md §1 (whole recipes, `main.py --config studies/configs/FILE:VARIANT`), not recipes to use."""
