"""Compiled-model speed: archdsl's generated modules against torchvision's own (and the
Transformer against the same model written with torch.nn.Transformer), and graph breaks
under torch.compile.

    .venv/bin/python benchmarks/model_speed.py [--write] [--device cuda] [--batch 64] [--size 224]

Forward (inference, no_grad) and forward+backward (training) throughput of ResNet-50, VGG-16,
DenseNet-121, EfficientNet-B0, GoogLeNet, ViT-B/16, ConvNeXt-T, Swin-T, MobileNet V3 and
ShuffleNet V2, archdsl's and torchvision's built side by side in one process with the same
weights, eager and torch.compile; and of the Transformer (base) on a source and a target of
64 tokens, against tests/test_transformer.py's torch.nn.Transformer model (examples: pairs). Each model is warmed up for at
least a second (compilation, allocator, thread pool), then the two are timed in interleaved
rounds whose order alternates (AB BA AB ...), so neither always runs first and slow drift of
the machine affects both alike. On a CPU each round keeps its median pass, and the default is
batch 8 at 112x112 to keep it short; on a GPU a round's passes are queued and timed together:
use --device cuda --batch 64 --size 224 --channels-last --amp bf16 --compiled resnet50.
`--only vgg16 ...` times some networks and skips the rest. Then the graph breaks of every zoo network under torch.compile (torch._dynamo.explain).
Targets: ratio >= 0.97; 0 graph breaks.
"""

import argparse
import statistics
import time

import torch
import torchvision

import archdsl
from archdsl.backends.torch_module import example_inputs
from archdsl.backends.weights import copy_state
from common import ROOT, interleaved, machine, with_steady_malloc, write_section

# VGG's paper classifier reads a 7x7x512 map, so VGG-16 always runs at 224x224 (torchvision's
# adaptive pool would hide a different size; the paper's network has none).
# Swin-T's patch merging needs grids that halve evenly three times: sizes multiple of 32.
FIXED_SIZE = {"vgg16": 224, "vit_b_16": 224,  # ViT's position embeddings: 14x14 patches
              "swin_t": 224}
MODELS = [("resnet.arch", "resnet50", "resnet50", {}), ("vgg.arch", "vgg16", "vgg16", {}),
          ("densenet.arch", "densenet121", "densenet121", {}),
          ("efficientnet.arch", "efficientnet_b0", "efficientnet_b0", {}),
          ("googlenet.arch", "googlenet_torchvision_noaux", "googlenet",
           {"aux_logits": False, "init_weights": True}),
          ("vit.arch", "vit_b_16", "vit_b_16", {}),
          ("convnext.arch", "convnext_tiny", "convnext_tiny", {}),
          ("swin.arch", "swin_t", "swin_t", {}),
          ("mobilenet.arch", "mobilenet_v3_large", "mobilenet_v3_large", {}),
          ("shufflenet.arch", "shufflenet_v2_x1_0", "shufflenet_v2_x1_0", {}),
          # against the same model written with torch.nn.Transformer, on 64-token sentences
          ("transformer.arch", "transformer_base", "nn.Transformer", {"context": 64})]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step(model, xs, train, amp=None):
    """One pass on the inputs `xs` (a tuple: a transformer's source and target)."""
    with torch.autocast(xs[0].device.type, dtype=amp, enabled=amp is not None):
        if train:
            out = model(*xs)
            out.float().sum().backward()
        else:
            with torch.no_grad():
                model(*xs)


def warm_up(model, xs, train, device, amp, seconds=1.0):
    """A first pass (which compiles), then at least `seconds` of passes."""
    step(model, xs, train, amp)
    sync(device)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(model, xs, train, amp)
    sync(device)


def pass_times(model, xs, train, device, repeats, amp):
    """Seconds of each of `repeats` passes. A GPU's passes are queued back to back and timed
    together (one wait at the end): a pass of a compiled ResNet-50 takes the host about as long
    to launch as the GPU to run, so waiting after each pass would time the launches."""
    if device.type == "cuda":
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            step(model, xs, train, amp)
        sync(device)
        return [(time.perf_counter() - start) / repeats]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(model, xs, train, amp)
        times.append(time.perf_counter() - start)
    return times


def transformer_pair(kwargs, args, device):
    """archdsl's Transformer and the same model written with torch.nn.Transformer (the test's
    reference, tests/test_transformer.py), with the same weights, and a batch of a source and
    a target of `kwargs["context"]` tokens."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_transformer import SIZES, Reference, reference_name

    net = archdsl.load(ROOT / "specs" / "transformer.arch").network(
        "transformer_base", context=kwargs["context"])
    ours = net.build(logits=True).to(device)
    theirs = Reference(**SIZES["transformer_base"]).to(device)
    state = theirs.state_dict()
    ours.load_state_dict({key: state[reference_name(key)] for key in ours.state_dict()})
    xs = tuple(torch.randint(0, 37000, (args.batch, kwargs["context"]), device=device)
               for _ in range(2))
    return ours, theirs, xs


def compare(file, name, reference, kwargs, args, device, compiled, train):
    if reference == "nn.Transformer":
        ours, theirs, xs = transformer_pair(kwargs, args, device)
    else:
        size = FIXED_SIZE.get(name, args.size)
        net = archdsl.load(ROOT / "specs" / file).network(name, input_shape=[3, size, size])
        ours = net.build(logits=True).to(device)
        theirs = torchvision.models.get_model(reference, weights=None, **kwargs).to(device)
        copy_state(ours, theirs)
        x = torch.randn(args.batch, 3, size, size, device=device)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        xs = (x,)
    for m in (ours, theirs):
        m.train(train)
        if args.channels_last:
            m.to(memory_format=torch.channels_last)
    if compiled:
        ours, theirs = torch.compile(ours), torch.compile(theirs)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    for m in (ours, theirs):
        warm_up(m, xs, train, device, amp)
    a, b = interleaved(args.rounds,
                       lambda: pass_times(ours, xs, train, device, args.repeats, amp),
                       lambda: pass_times(theirs, xs, train, device, args.repeats, amp))
    # A round's ratio compares its passes a few seconds apart, so drift of the machine cancels;
    # the median pass of a round leaves out a stray one (a page-fault storm, a neighbour's burst)
    ratios = [statistics.median(tb) / statistics.median(ta) for ta, tb in zip(a, b)]
    per_pass = [statistics.median(sum(t, [])) for t in (a, b)]
    return args.batch / per_pass[0], args.batch / per_pass[1], ratios


def attention_kernels(args, device):
    """For the timed transformers: the GPU kernels whose names say which attention ran in a
    compiled training pass of each (flash, memory-efficient, or none: the unfused math)."""
    from torch.profiler import ProfilerActivity, profile

    found = {}
    for file, name, reference, kwargs in MODELS:
        if "vit" not in name or (args.only and name not in args.only):
            continue
        size = FIXED_SIZE.get(name, args.size)
        net = archdsl.load(ROOT / "specs" / file).network(name, input_shape=[3, size, size])
        ours = net.build(logits=True).to(device)
        theirs = torchvision.models.get_model(reference, weights=None, **kwargs).to(device)
        x = torch.randn(args.batch, 3, size, size, device=device)
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
        for who, model in (("archdsl", ours), ("torchvision", theirs)):
            model = torch.compile(model.train())
            step(model, (x,), True, amp)
            sync(device)
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                step(model, (x,), True, amp)
                sync(device)
            names = {e.key for e in prof.key_averages()}
            attention = sorted({n[:60] for n in names if any(
                w in n.lower() for w in ("flash", "fmha", "efficient_attention", "mem_eff"))})
            found[f"{name}, {who}"] = ", ".join(attention) or "none (unfused attention)"
    return found


def graph_breaks():
    counts = {}
    for path in sorted((ROOT / "specs").glob("*.arch")):
        spec = archdsl.load(path)
        for name in spec.concrete_networks():
            net = spec.network(name)
            shape = net.input_shape
            if len(shape) == 3 and shape[1] > 64:  # smaller inputs explain faster; same graph
                try:
                    net = spec.network(name, input_shape=[shape[0], 64, 64])
                except archdsl.SpecError:
                    pass
            # on the meta device: the same graph, without allocating GPT-2 XL's 6 GB
            with torch.device("meta"):
                model = net.build().eval()
            torch._dynamo.reset()
            explanation = torch._dynamo.explain(model)(*example_inputs(net.graph, 2, "meta"))
            counts[name] = explanation.graph_break_count
    return counts


def main():
    with_steady_malloc()
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, help="passes a round (default: 3 on a CPU, "
                        "20 on a GPU)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this type")
    parser.add_argument("--no-compile", action="store_true", help="time eager models only")
    parser.add_argument("--compiled", nargs="+", choices=[m[1] for m in MODELS],
                        help="time only these networks compiled as well (compiling ten models "
                        "takes many minutes on a GPU host)")
    parser.add_argument("--only", nargs="+", choices=[m[1] for m in MODELS],
                        help="time just these networks (no graph breaks; written only to a "
                        "--section of their own)")
    parser.add_argument("--passes", choices=("both", "forward", "train"), default="both",
                        help="time forward passes, forward+backward ones, or both (default)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--section", help="with --only and --write: the docs/benchmarks.md "
                        "section to write (the main table needs every network)")
    args = parser.parse_args()
    if args.only and args.write and not args.section:
        parser.error("--write records the whole table; leave out --only, or name a --section")
    device = torch.device(args.device)
    args.repeats = args.repeats or (20 if device.type == "cuda" else 3)
    torch.manual_seed(0)
    rows = []
    for file, name, reference, kwargs in MODELS:
        if args.only and name not in args.only:
            continue
        compiles = not args.no_compile and (args.compiled is None or name in args.compiled)
        for compiled in ([False, True] if compiles else [False]):
            for train in {"both": (False, True), "forward": (False,),
                          "train": (True,)}[args.passes]:
                ours, theirs, ratios = compare(file, name, reference, kwargs, args, device,
                                               compiled, train)
                rows.append((name, "compiled" if compiled else "eager",
                             "forward+backward" if train else "forward", ours, theirs, ratios))
                print(rows[-1], flush=True)
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else machine()
    table = ["| network | input | mode | pass | archdsl (per s) | reference (per s) | ratio "
             "| middle half of rounds |", "|---|---|---|---|---:|---:|---:|---|"]
    contexts = {name: kwargs["context"] for _, name, _, kwargs in MODELS if "context" in kwargs}
    for n, m, p, a, b, ratios in rows:
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        size = f"{contexts[n]} + {contexts[n]} tokens" if n in contexts else \
            f"{FIXED_SIZE.get(n, args.size)}²"
        table.append(f"| {n} | {size} | {m} | {p} | {a:.1f} | {b:.1f} "
                     f"| {statistics.median(ratios):.3f} | {q1:.3f}–{q3:.3f} |")
    worst = min(statistics.median(r[-1]) for r in rows)
    lines = [
        f"Device: {device_name}; batch {args.batch} at {args.size}x{args.size} unless the table says"
        f"{', channels-last' if args.channels_last else ''}{', autocast ' + args.amp if args.amp else ''}"
        f"; same weights in both; after a first pass and at least 1 s more of warm-up each, "
        f"{args.rounds} interleaved rounds (AB, BA, ...) of {args.repeats} passes. "
        + ("A round's passes are queued and timed together; throughputs are medians over the "
           "rounds" if device.type == "cuda" else "Throughputs are from the median pass; a "
           "round's ratio compares its median passes")
        + ", and the ratio is the median of the rounds' ratios. Fixed malloc "
        "thresholds (MALLOC_TUNABLES in benchmarks/common.py).", "", *table, "",
        f"Lowest ratio {worst:.3f} (target 0.97: {'met' if worst >= 0.97 else 'missed'})."]
    if device.type == "cuda":  # a property of the generated code, counted on a CPU
        lines[-1] += " Graph breaks: see the CPU run."
        try:
            kernels = attention_kernels(args, device)
        except Exception as error:  # the timings above stand without it
            kernels = {"not found": f"{type(error).__name__}: {error}"}
        if kernels:
            lines.append("")
            lines += [f"Attention kernels of a compiled training pass ({n}): {k}."
                      for n, k in kernels.items()]
    elif not args.only:
        breaks = graph_breaks()
        total = sum(breaks.values())
        lines[-1] += (f" Graph breaks under torch.compile over the {len(breaks)} networks of the "
                      f"zoo: {total}{'' if total else ' (target 0: met)'}.")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.section or
                      "model-speed-" + ("cuda" if device.type == "cuda" else "cpu"), text)


if __name__ == "__main__":
    main()
