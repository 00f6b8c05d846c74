"""Training: `archdsl train` and `archdsl eval` (loop.py), data sets (data.py), checkpoints."""
