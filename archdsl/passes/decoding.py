"""Whether a language model can write a token at a time reading only the new token (with a
cache), from its layer kinds' `decodes` facts (layers/registry.py): train/text.py's
`generate` and the exported .py's use it."""

from __future__ import annotations


def decodes_with_cache(graph) -> bool:
    """True when every layer either acts on each position alone or keeps what earlier
    positions left, and one does keep something (a GPT). Not a network of recurrent layers,
    nor one that takes exactly its context, nor attention that sees later positions."""
    kinds = set()
    for record in graph.records.values():
        layer = record.get("layer")
        if layer is None:  # the input and the outputs
            continue
        inputs = [graph.records[i]["shape"] for i in record["inputs"]]
        kinds.add(layer.decodes(record["args"], inputs[0] if len(inputs) == 1 else inputs))
    return None not in kinds and "cached" in kinds
