"""Every network of the zoo that torchvision also has, against torchvision: the check that
`archdsl compile FILE NETWORK --torchvision NAME` makes, on all of them.

    .venv/bin/python benchmarks/torchvision_parity.py [--write] [NETWORK ...]

For each: torchvision's model (random weights) is built, its tensors are copied into the
compiled spec in order, and both run on one random batch in eval mode; the table gives the
tensors copied and the largest difference of the outputs (the CLI's threshold: 1e-4).
Networks whose names torchvision shares are compared with that model; the list below names
the others. Large models take memory (ViT-H/14 and RegNetY-128GF: 2.5 GB each, twice).
"""

import gc
import sys
import time

import torch

import archdsl
from archdsl.backends.weights import compare_with_torchvision_model
from common import ROOT, machine, write_section

# spec networks that are torchvision models under another name, or with other arguments;
# None: a network of the same name that is not torchvision's (the paper's GoogLeNet)
OTHER_NAMES = {
    "alexnet_torchvision": ("alexnet", {}),
    "googlenet": None,
    "googlenet_torchvision": ("googlenet", {"aux_logits": True, "init_weights": True}),
    "googlenet_torchvision_noaux": ("googlenet", {"aux_logits": False, "init_weights": True}),
    "inception_v3": ("inception_v3", {"aux_logits": True, "init_weights": True}),
    "inception_v3_noaux": ("inception_v3", {"aux_logits": False, "init_weights": True}),
}


def pairs():
    import torchvision

    known = set(torchvision.models.list_models())
    for path in sorted((ROOT / "specs").glob("*.arch")):
        spec = archdsl.load(path)
        for name in spec.concrete_networks():
            if name in OTHER_NAMES:
                if OTHER_NAMES[name] is not None:
                    yield path, name, *OTHER_NAMES[name]
            elif name in known:
                yield path, name, name, {}


def main():
    wanted = [a for a in sys.argv[1:] if not a.startswith("--")]
    torch.manual_seed(0)
    rows, worst = [], 0.0
    for path, name, reference, kwargs in pairs():
        if wanted and name not in wanted:
            continue
        start = time.perf_counter()
        net = archdsl.load(path).network(name)
        tensors, diff = compare_with_torchvision_model(net, reference, **kwargs)
        gc.collect()
        worst = max(worst, diff)
        args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        rows.append(f"| `{name}` | {reference}({args}) | {tensors} | {diff:.1e} | "
                    f"{'agree' if diff <= 1e-4 else 'DIFFER'} |")
        print(rows[-1], f"{time.perf_counter() - start:.1f} s", flush=True)
    text = "\n".join([
        f"Machine: {machine()}. One random batch, eval mode, torchvision's random weights "
        "copied in order (`archdsl compile FILE NETWORK --torchvision NAME`).", "",
        "| network | torchvision | tensors | max abs difference | |", "|---|---|---:|---:|---|",
        *rows, "",
        f"{len(rows)} networks; the largest difference {worst:.1e} "
        f"({'all agree' if worst <= 1e-4 else 'some DIFFER'} within the CLI's 1e-4)."])
    print(text)
    if "--write" in sys.argv:
        write_section("torchvision-parity", text)
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
