"""The training-memory estimate (`archdsl summary --batch N`, passes/memory.py) against the
allocator's own peak over one training step of the built module.

    .venv/bin/python benchmarks/memory_estimate.py [--write] [--device cuda]

For LeNet-5, ResNet-18 and ViT-Ti, each at two batch sizes, at fp32 and with bf16 autocast:
archdsl's estimate of the step's peak, and the measured peak of a second step (after a first
one that creates SGD's momentum buffers): on a CPU from the profiler's memory timeline (every
allocation and free, tests/oracle.py), on a GPU torch.cuda.max_memory_allocated.
Target: within 20% of the measurement.
"""

import argparse
import sys

import archdsl
from common import ROOT, machine, write_section

sys.path.insert(0, str(ROOT / "tests"))
from oracle import training_step_peak  # noqa: E402

MiB = 2**20
CASES = [("lenet.arch", "lenet5", (32, 256)), ("resnet.arch", "resnet18", (4, 16)),
         ("vit.arch", "vit_ti_16", (2, 8))]
GPU_CASES = [("lenet.arch", "lenet5", (256, 4096)), ("resnet.arch", "resnet18", (32, 128)),
             ("vit.arch", "vit_ti_16", (32, 128)), ("resnet.arch", "resnet50", (64, 256))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    rows, worst = [], 0.0
    for file, name, batches in GPU_CASES if gpu else CASES:
        net = archdsl.load(ROOT / "specs" / file).network(name)
        for batch in batches:
            for precision in ("fp32", "bf16"):
                estimate = net.memory(batch, precision).peak
                measured = training_step_peak(net, batch, precision, device=args.device)
                error = estimate / measured - 1
                worst = max(worst, abs(error))
                rows.append(f"| {name} | {batch} | {precision} | {estimate / MiB:,.1f} "
                            f"| {measured / MiB:,.1f} | {error:+.1%} |")
                print(rows[-1], flush=True)
    import torch

    device = torch.cuda.get_device_name() if gpu else machine()
    how = ("torch.cuda.max_memory_allocated" if gpu else
           "the profiler's memory timeline (torch.profiler, profile_memory=True)")
    text = "\n".join([
        f"Device: {device}; PyTorch {torch.__version__}. One training step (forward, a loss "
        f"on the logits, backward, foreach SGD with momentum and weight decay) after a first "
        f"one; measured: {how}.", "",
        "| network | batch | precision | estimate (MiB) | measured (MiB) | error |",
        "|---|---:|---|---:|---:|---:|", *rows, "",
        f"Largest error {worst:.1%} (target 20%: {'met' if worst <= 0.2 else 'missed'})."])
    print(text)
    if args.write:
        write_section("memory-estimate-" + ("cuda" if gpu else "cpu"), text)


if __name__ == "__main__":
    main()
