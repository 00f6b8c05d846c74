"""Elaboration: blocks, parameters and repeats → a layer graph (archdsl.graph.LayerGraph)."""
