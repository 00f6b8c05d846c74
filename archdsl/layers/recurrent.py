"""Recurrent layers over a sequence: LSTM and GRU (batch first), returning every position's
hidden state — the sequence that the next layer (a linear, a pick) reads.

Under torch.compile, PyTorch's dynamo runs a forward that calls nn.LSTM or nn.GRU eagerly,
whole, unless `torch._dynamo.config.allow_rnn` is set; with it the network is one graph
(tests/test_backend.py)."""

from __future__ import annotations

from ..shapes import SEQ, Shape
from .registry import LayerKind, Params, Param, TorchModule, register
from .types import Bool, Float, Int


class Recurrent(LayerKind):
    """What LSTM and GRU share: `gates` weight blocks of hidden x (input + hidden) per layer
    and direction, and two biases per gate block (PyTorch's bias_ih and bias_hh)."""

    family = "attention"  # drawn with the other sequence layers
    is_rnn = True
    gates = 0
    # element-wise operations per position and hidden unit besides the gates' products and
    # sums: LSTM three sigmoids, two tanh, three products and a sum; GRU two sigmoids, a tanh,
    # three products, a sum and a difference
    pointwise = 9
    torch_class = ""
    params = (
        Param("hidden", Int(1), doc="hidden state width (per direction)"),
        Param("layers", Int(1), 1, "stacked layers"),
        Param("bidirectional", Bool(), False, "also run backwards; the output width doubles"),
        Param("dropout", Float(0.0, 1.0), 0.0, "dropout between stacked layers while training"),
        Param("bias", Bool(), True, "the two biases of every gate"),
    )
    accepts = (SEQ,)
    output_disposable = True
    autocast = "low"

    def saved_extra(self, a, x, y):
        # per position, layer and direction: the gates' values and the cell and hidden states
        # (an estimate: cuDNN keeps them in a reserve of its own layout)
        return ((x[0] * a["layers"] * self.directions(a) * a["hidden"] * (self.gates + 2),
                 "act"),)

    def onnx_one_size(self, a, x):
        # torch.onnx writes ONNX's LSTM/GRU with the sequence's length fixed in their shapes
        # (stacked ones reshape by it: at another length they fail, or mix up the batch)
        return "PyTorch's ONNX export of recurrent layers fixes the sequence's length"

    def directions(self, a) -> int:
        return 2 if a["bidirectional"] else 1

    def layer_inputs(self, a, x) -> list[int]:
        """The input width of each stacked layer: the sequence's, then the layer below's."""
        return [x[1]] + [a["hidden"] * self.directions(a)] * (a["layers"] - 1)

    def shape(self, a, x):
        return Shape((x[0], a["hidden"] * self.directions(a)), SEQ)

    def params_count(self, a, x):
        g, h = self.gates, a["hidden"]
        per_direction = sum(g * h * (d + h) + (2 * g * h if a["bias"] else 0)
                            for d in self.layer_inputs(a, x))
        return Params(per_direction * self.directions(a))

    def macs(self, a, x, y):
        g, h = self.gates, a["hidden"]
        return x[0] * self.directions(a) * sum(g * h * (d + h) for d in self.layer_inputs(a, x))

    def flops(self, a, x, y):
        g, h = self.gates, a["hidden"]
        # per position, layer and direction: the input and hidden products summed (g·h), the
        # biases (2·g·h), the gates' element-wise work
        rest = x[0] * self.directions(a) * a["layers"] * h * (
            g + (2 * g if a["bias"] else 0) + self.pointwise)
        return 2 * self.macs(a, x, y) + rest

    def torch(self, a, x, y):
        return TorchModule(self.torch_class, dict(
            input_size=x[1], hidden_size=a["hidden"], num_layers=a["layers"], bias=a["bias"],
            batch_first=True, dropout=a["dropout"], bidirectional=a["bidirectional"]))

    def describe(self, a):
        return (f"{self.name} {a['hidden']}" + (f" x{a['layers']}" if a["layers"] > 1 else "")
                + (", bidirectional" if a["bidirectional"] else ""))


@register
class LSTM(Recurrent):
    name = "lstm"
    doc = ("Long short-term memory (Hochreiter & Schmidhuber 1997; torch.nn.LSTM, batch "
           "first): LxD to Lx(hidden·directions), every position's hidden state. MACs: the "
           "four gates' input and hidden products, 4·hidden·(D + hidden) per position, layer "
           "and direction. torch.compile traces it with torch._dynamo.config.allow_rnn = True "
           "(PyTorch runs RNNs eagerly otherwise); `archdsl train --compile` sets it.")
    gates = 4
    torch_class = "archdsl.backends.torch_modules.LSTM"


@register
class GRU(Recurrent):
    name = "gru"
    doc = ("Gated recurrent unit (Cho et al. 2014; torch.nn.GRU, batch first): LxD to "
           "Lx(hidden·directions), every position's hidden state. MACs: the three gates' "
           "input and hidden products, 3·hidden·(D + hidden) per position, layer and "
           "direction.")
    gates = 3
    torch_class = "archdsl.backends.torch_modules.GRU"
