"""Language-model training throughput: `archdsl train --task lm` against a minimal
hand-written PyTorch loop training the same model on the same text with the same settings.

    .venv/bin/python benchmarks/train_speed_lm.py [--write] [--device cuda --amp bf16 --compile]

A small GPT (specs/gpt.arch), a Llama of the same size (specs/llama.arch: rotary embeddings,
grouped keys and values, SwiGLU) and char-rnn's LSTM (specs/char_rnn.arch) on a seeded text of
random words over 65 characters, cut into windows of the context's length as `text:` data
sets are; SGD with momentum and a cosine schedule, no validation split. Both sides run as
fresh processes for --epochs epochs; sequences/s is that of the last epoch. Each side runs
--runs times, alternating which goes first; the ratio is the median of the pairs' ratios.
Target: archdsl >= 0.95 of the hand-written loop.
"""

import argparse
import random
import statistics
import tempfile
from pathlib import Path

from common import (archdsl_train_speed, hand_written_speed, interleaved, machine,
                    write_section)

HAND_WRITTEN = '''
import json, math, sys, time, torch, torch.nn.functional as F, archdsl
args = json.loads(sys.argv[1])
device = torch.device(args["device"])
torch.manual_seed(0)
net = archdsl.load(args["spec"]).network(args["network"], **args["set"])
model = net.build(logits=True).to(device)
decay = [p for p in model.parameters() if p.ndim > 1]
rest = [p for p in model.parameters() if p.ndim <= 1]
opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0}],
                      lr=0.05, momentum=0.9)
step_fn = torch.compile(model) if args["compile"] else model
text = open(args["text"], encoding="utf-8").read()
vocabulary = sorted(set(text))
ids = torch.tensor([vocabulary.index(c) for c in text])
stream = ids[:int(len(ids) * 0.9)]  # the training part, as text: data sets split it
L = net.input_shape[0]
count = (len(stream) - L) // L
x_all = stream[:count * L].view(count, L).to(device)
y_all = stream[1:count * L + 1].view(count, L).to(device)
batch = args["batch"]
steps = count // batch
amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args["amp"])
model.train()
for epoch in range(args["epochs"]):  # the last epoch is timed
    start = time.perf_counter()
    for s in range(steps):
        for group in opt.param_groups:
            group["lr"] = 0.05 * 0.5 * (1 + math.cos(math.pi * s / steps))
        x, y = x_all[s * batch:(s + 1) * batch], y_all[s * batch:(s + 1) * batch]
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = step_fn(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
print(json.dumps({"sequences_per_s": steps * batch / (time.perf_counter() - start)}))
'''

# (label, spec, network, its parameters, batch on a CPU, on a GPU)
CASES = [("gpt (4 layers, width 128, context 128)", "specs/gpt.arch", "gpt",
          dict(depth=4, d=128, heads=4, context=128, vocab=65), 32, 256),
         ("llama (4 layers, width 128, 2 kv heads, context 128)", "specs/llama.arch", "llama",
          dict(depth=4, d=128, heads=4, kv_heads=2, context=128, vocab=65), 32, 256),
         ("char_lstm (2 layers of 256, context 100)", "specs/char_rnn.arch", "char_lstm",
          dict(hidden=256, context=100, vocab=65), 32, 256)]


def make_text(path: Path, characters: int) -> None:
    """Seeded random words over 65 characters (tiny Shakespeare's count), one per line at
    times: a text whose every window is new, as a real one's."""
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'-&"[:63]
    words, size = [], 0
    while size < characters:
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        words.append(word + ("\n" if rng.random() < 0.1 else " "))
        size += len(words[-1])
    path.write_text("".join(words)[:characters], encoding="utf-8")


def archdsl_run(spec, network, sets, text, batch, epochs, options):
    settings = sum((["--set", f"{k}={v}"] for k, v in sets.items()), [])
    return archdsl_train_speed([
        spec, network, *settings, "--data", f"text:{text}", "--val-split", "0", "--epochs",
        str(epochs), "--batch-size", str(batch), *options])


def hand_run(spec, network, sets, text, batch, args):
    return hand_written_speed(HAND_WRITTEN, {
        "spec": spec, "network": network, "set": sets, "text": str(text), "batch": batch,
        "epochs": args.epochs, "device": args.device, "amp": args.amp,
        "compile": args.compile}, "sequences_per_s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("bf16", "fp16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--characters", type=int, help="of the text (default: 150,000 on a "
                        "CPU, 3,000,000 on a GPU)")
    parser.add_argument("--epochs", type=int, help="epochs per run, the last one timed "
                        "(default: 1 on a CPU, 2 on a GPU)")
    parser.add_argument("--runs", type=int, help="pairs of runs per network (default: 3 on a "
                        "CPU, 1 on a GPU)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    args.epochs = args.epochs or (2 if gpu else 1)
    args.runs = args.runs or (1 if gpu else 3)
    characters = args.characters or (3_000_000 if gpu else 150_000)
    options = ["--device", args.device] + (["--amp", args.amp] if args.amp else []) + \
        (["--compile"] if args.compile else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "text.txt"
        make_text(text, characters)
        for label, spec, network, sets, on_cpu, on_gpu in CASES:
            batch = on_gpu if gpu else on_cpu
            ours, theirs = interleaved(
                args.runs,
                lambda: archdsl_run(spec, network, sets, text, batch, args.epochs, options),
                lambda: hand_run(spec, network, sets, text, batch, args))
            ratios = [a / h for a, h in zip(ours, theirs)]
            rows.append((label, batch, statistics.median(ours), statistics.median(theirs),
                         statistics.median(ratios), min(ratios), max(ratios)))
            print(rows[-1], flush=True)
    table = ["| network | batch | archdsl train (seq/s) | hand-written loop (seq/s) | ratio | "
             "range of runs |", "|---|---:|---:|---:|---:|---|"]
    table += [f"| {l} | {b} | {a:.1f} | {h:.1f} | {r:.3f} | {lo:.3f}–{hi:.3f} |"
              for l, b, a, h, r, lo, hi in rows]
    worst = min(row[4] for row in rows)
    import torch

    device_name = torch.cuda.get_device_name() if gpu else machine()
    lines = [f"Device: {device_name}; options: {' '.join(options)}; a seeded text of "
             f"{characters:,} characters over 65 (its first 90% trains), {args.epochs} "
             f"epoch(s), the last timed in both; SGD with momentum, cosine schedule; "
             f"{args.runs} pair(s) of runs, alternating which goes first (throughputs are "
             "medians, the ratio the median of the pairs' ratios); fixed malloc thresholds.",
             "", *table, "",
             f"Lowest ratio {worst:.3f} (target 0.95: {'met' if worst >= 0.95 else 'missed'})."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("train-speed-lm-" + ("cuda" if gpu else "cpu"), text)


if __name__ == "__main__":
    main()
