"""Tests across packages: the import graph, params.yaml and dvc.yaml, reproducibility, stage errors, docs."""
