"""Backends: what a layer graph becomes (a PyTorch module, Python source, a diagram)."""
