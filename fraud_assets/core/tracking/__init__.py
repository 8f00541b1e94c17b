"""Experiment tracking in MLflow: training runs, and aliases that follow the registry."""
