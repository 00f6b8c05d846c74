"""Training throughput: `archdsl train` against a minimal hand-written PyTorch loop training
the same model on the same synthetic data with the same settings.

    .venv/bin/python benchmarks/train_speed.py [--write] [--device cuda --amp bf16 --channels-last --compile]

ResNet-18 at CIFAR's shape (3x32x32, 10 classes) and ResNet-50 at 224x224 (fewer steps on a
CPU). Both run as fresh processes; images/s over the epoch, excluding nothing for either.
Target: archdsl >= 0.95 of the hand-written loop.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ARCHDSL, ROOT, machine, write_section

HAND_WRITTEN = '''
import json, math, sys, time, torch, torch.nn.functional as F, archdsl
args = json.loads(sys.argv[1])
device = torch.device(args["device"])
torch.manual_seed(0)
net = archdsl.load(args["spec"]).network(args["network"], input_shape=args["input"], classes=10)
model = net.build(logits=True).to(device)
if args["channels_last"]:
    model = model.to(memory_format=torch.channels_last)
decay = [p for p in model.parameters() if p.ndim > 1]
rest = [p for p in model.parameters() if p.ndim <= 1]
opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0}],
                      lr=0.05, momentum=0.9)
step_fn = torch.compile(model) if args["compile"] else model
g = torch.Generator().manual_seed(0)
n, batch = args["images"], args["batch"]
images = torch.randint(0, 256, (n, *args["input"]), generator=g, dtype=torch.uint8).to(device)
labels = torch.randint(0, 10, (n,), generator=g).to(device)
steps = n // batch
amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args["amp"])
model.train()
start = time.perf_counter()
for s in range(steps):
    for group in opt.param_groups:
        group["lr"] = 0.05 * 0.5 * (1 + math.cos(math.pi * s / steps))
    x = (images[s * batch:(s + 1) * batch].float() / 255 - 0.5) / 0.29
    if args["channels_last"]:
        x = x.contiguous(memory_format=torch.channels_last)
    y = labels[s * batch:(s + 1) * batch]
    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        loss = F.cross_entropy(step_fn(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
if device.type == "cuda":
    torch.cuda.synchronize()
print(json.dumps({"images_per_s": steps * batch / (time.perf_counter() - start)}))
'''

CASES = [("resnet18 (3x32x32)", "specs/resnet.arch", "resnet18", [3, 32, 32], 64),
         ("resnet50 (3x224x224)", "specs/resnet.arch", "resnet50", [3, 224, 224], 16)]


def archdsl_run(spec, network, shape, batch, images, options):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ARCHDSL + ["train", spec, network, "--set", "classes=10", "--input",
                         "x".join(map(str, shape)), "--data", "fake", "--fake-size", str(images),
                         "--val-split", "0", "--epochs", "1", "--batch-size", str(batch),
                         "--no-progress", "--no-tensorboard", "--out", f"{tmp}/run", *options]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        return json.loads(Path(tmp, "run", "metrics.json").read_text())[0]["images_per_s"]


def hand_run(spec, network, shape, batch, images, args):
    payload = json.dumps({"spec": spec, "network": network, "input": shape, "batch": batch,
                          "images": images, "device": args.device, "amp": args.amp,
                          "channels_last": args.channels_last, "compile": args.compile})
    done = subprocess.run([sys.executable, "-c", HAND_WRITTEN, payload], capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["images_per_s"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--scale", type=int, default=1, help="multiply the images per run")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    options = ["--device", args.device] + (["--amp", args.amp] if args.amp else []) + \
        (["--channels-last"] if args.channels_last else []) + (["--compile"] if args.compile else [])
    rows = []
    for label, spec, network, shape, batch in CASES:
        images = (2048 if shape[1] == 32 else 256) * args.scale
        if args.device == "cpu" and shape[1] > 32:
            images = 96 * args.scale
        ours = archdsl_run(spec, network, shape, batch, images, ["--no-augment", *options])
        theirs = hand_run(spec, network, shape, batch, images, args)
        rows.append((label, batch, images, ours, theirs))
        print(rows[-1], flush=True)
    table = ["| network | batch | images | archdsl train (img/s) | hand-written loop (img/s) | ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    table += [f"| {l} | {b} | {n} | {a:.1f} | {h:.1f} | {a / h:.3f} |" for l, b, n, a, h in rows]
    worst = min(a / h for *_, a, h in rows)
    import torch

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else machine()
    text = "\n".join([
        f"Device: {device_name}; options: {' '.join(options)}; one epoch of synthetic data, "
        "SGD with momentum, cosine schedule, no augmentation, whole epoch timed in both.", "",
        *table, "", f"Lowest ratio {worst:.3f} (target 0.95: {'met' if worst >= 0.95 else 'missed'})."])
    print(text)
    if args.write:
        write_section("train-speed-" + args.device, text)


if __name__ == "__main__":
    main()
