"""Passes over a layer graph: they read it and record their results on its nodes."""
