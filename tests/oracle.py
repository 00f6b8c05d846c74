"""Torch as the oracle: compare what archdsl infers with what the compiled module does.

For a network: every layer's inferred output shape against the real output of its module
(forward hooks), the outputs' shapes, trainable parameters against sum(p.numel()), the
non-trainable count against BatchNorm's running statistics, and the headline MACs against
torch.utils.flop_counter.FlopCounterMode (which counts a multiply-add as 2 FLOPs).
"""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from archdsl.backends.codegen import module_path
from archdsl.backends.torch_module import example_inputs


# Buffers that are constant tables made from the layer's arguments, not state: not counted
CONSTANT_TABLES = ("relative_coords_table",)  # Swin V2's log-spaced relative positions


def running_stats(model) -> int:
    """The buffers archdsl counts: running statistics (and a frozen BatchNorm's scale and
    shift), which are floating point; not integer tables and counters (BatchNorm's
    `num_batches_tracked`, window attention's `relative_position_index`) nor constant
    tables."""
    return sum(b.numel() for name, b in model.named_buffers()
               if b.is_floating_point() and not name.endswith(CONSTANT_TABLES))


def macs_per_batch(net) -> int:
    """The MACs a forward pass computes once however large its batch (LayerKind.
    macs_per_batch: Swin V2's position-bias MLPs), which the headline counts once per
    image."""
    graph = net.graph
    return sum(node["layer"].macs_per_batch(node["args"], graph[node["inputs"][0]]["shape"])
               for _, node in graph.layers() if not node["layer"].is_merge)


def check_against_torch(net, batch: int = 2, count_flops: bool = True, device: str = "cpu"):
    """Build `net`, run it on random input and assert every inferred fact. Returns the model.
    On device="meta" nothing is allocated or computed: shapes and counts only, quickly."""
    graph = net.graph
    with torch.device(device):
        model = net.build().eval()
    seen = {}
    hooks = []
    for name, node in graph.layers():
        module = model
        try:
            for segment in module_path(name):
                module = getattr(module, segment)
        except AttributeError:
            continue  # functional layers (add, concat, flatten, identity) have no module

        def hook(_module, _inputs, output, name=name):
            seen[name] = tuple(output.shape[1:])

        hooks.append(module.register_forward_hook(hook))
    xs = example_inputs(graph, batch, device)
    # oneDNN's fused LSTM kernel is not counted by FlopCounterMode; without it, the LSTM runs
    # as matmuls that are (only then: it makes convolutions slower)
    mkldnn = not any(node["kind"] == "lstm" for _, node in graph.layers())
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=mkldnn):
        if count_flops:
            # the math kernel of scaled_dot_product_attention is matmuls that FlopCounterMode
            # counts (its fused CPU kernel is not counted)
            with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
                out = model(*xs)
            flops = counter.get_total_flops()
        else:
            out = model(*xs)
    for h in hooks:
        h.remove()

    for name, shape in seen.items():
        assert shape == tuple(graph[name]["shape"]), f"{name}: torch gives {shape}, archdsl says {graph[name]['shape']}"
    outs = out if isinstance(out, tuple) else (out,)  # several main outputs: a tuple
    assert [tuple(o.shape[1:]) for o in outs] == \
        [tuple(net.output_shapes[o]) for o in graph.main_outputs]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert trainable == net.params_trainable, (trainable, net.params_trainable)
    assert frozen == net.totals.params_frozen, (frozen, net.totals.params_frozen)
    assert running_stats(model) + frozen == net.params_nontrainable
    if count_flops:
        once = macs_per_batch(net)
        expected = 2 * (net.macs - once) * batch + 2 * once
        assert flops == expected, (flops, expected)

    if graph.side_outputs:  # side outputs exist in training mode, and cost more
        model.train()
        # batch norm in training needs two values per channel: an auxiliary head's 1x1 map
        # (Inception-v3's) has one per example
        batch = max(batch, 2)
        xs = example_inputs(graph, batch, device)
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=mkldnn), \
                FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            outs = model(*xs)
        assert [tuple(o.shape[1:]) for o in outs] == [tuple(s) for s in net.output_shapes.values()]
        if count_flops:
            assert counter.get_total_flops() == 2 * (net.macs + net.totals.macs_side) * batch
    return model


def training_step_peak(net, batch: int, precision: str = "fp32", optimizer: str = "sgd",
                       device: str = "cpu") -> int:
    """The allocator's peak bytes over one training step of the built module (forward, loss,
    backward, optimizer step), after a first step that creates the optimizer's state: what
    archdsl's memory estimate (passes/memory.py) predicts. On a GPU torch.cuda's peak; on a
    CPU the profiler's memory timeline (every allocation and free of the step, in order)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import MemoryProfileTimeline

    torch.manual_seed(0)
    model = net.build(logits=True).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.AdamW(params, lr=1e-3, foreach=True) if optimizer == "adamw" else
           torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4,
                                           foreach=True))  # as on a GPU, by default
    amp = torch.bfloat16 if precision == "bf16" else None

    def step():
        inputs = example_inputs(net.graph, batch, device)
        with torch.autocast(torch.device(device).type, dtype=amp, enabled=amp is not None):
            out = model(*inputs)
            outs = out if isinstance(out, tuple) else (out,)
            loss = sum(o.float().logsumexp(1).mean() for o in outs)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        step()
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(device)
    return max(sum(s) for s in sizes)
