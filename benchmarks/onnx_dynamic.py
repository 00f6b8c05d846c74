"""ONNX with dynamic sizes (`archdsl compile -o NAME.onnx --dynamic`) across the zoo: each
network is written with dynamic sizes and run by onnxruntime at other sizes than its spec's,
against the PyTorch module at the same sizes.

    .venv/bin/python benchmarks/onnx_dynamic.py [--write] [NETWORK ...]

The sizes: 0.75, 1.25 and 1.5 times the spec's for an image's height and width (in
multiples of 32; of 8 below 128), half that for a sequence's length (a GPT takes up to its context). A network that archdsl refuses to write with
dynamic sizes is listed with the reason; one whose PyTorch module refuses a size is run at
the others. The table gives the export's time and the largest difference at each size.
Without names it takes a set that covers the zoo's layer kinds (the tests run three small
networks; this is the wider check, minutes long).
"""

import contextlib
import io
import logging
import sys
import time
import warnings

import torch

import archdsl
from archdsl.backends.export import ExportError
from archdsl.backends.torch_module import InputError, example_input
from common import machine, write_section

NETWORKS = ["squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5",
            "mnasnet0_5", "efficientnet_b0", "efficientnet_v2_s", "regnet_x_400mf",
            "densenet121", "inception_v3", "convnext_tiny", "resnext50_32x4d", "xception",
            "yolov8n", "unet_small", "deeplabv3_resnet50", "resnet18_fpn", "gpt_char",
            # refused, with their reasons
            "lenet5", "vgg11_bn", "googlenet", "swin_t", "char_lstm"]
FACTORS = (0.75, 1.25, 1.5)


def other_sizes(shape):
    """The spec's size scaled by each factor: images in multiples of 32 (of 8 below 128), a
    sequence's length by half of it (a GPT takes at most its context)."""
    axes = shape.size_axes
    for factor in FACTORS:
        if shape.layout in ("seq", "tokens"):
            yield shape.like([max(1, int(n * factor / 2)) if i in axes else n
                              for i, n in enumerate(shape)])
        else:  # small inputs (a small U-Net's 32x32) in multiples of 8
            step = 32 if min(shape[i] for i in axes) >= 128 else 8
            yield shape.like([max(step, int(n * factor) // step * step) if i in axes else n
                              for i, n in enumerate(shape)])


def check(name: str, folder) -> tuple[str, str]:
    import onnxruntime

    net = archdsl.zoo_network(name)
    model = net.build().eval()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            path = net.export(folder / f"{name}.onnx", model, dynamic=True)
    except ExportError as error:
        return "refused", str(error).replace("|", "\\|")
    seconds = time.perf_counter() - start
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = net.graph.input_shapes()["input"]
    results = []
    for size in other_sizes(shape):
        shown = "x".join(map(str, size))
        torch.manual_seed(0)
        x = example_input(size, 2)
        try:
            with torch.no_grad():
                expected = model(x)
        except InputError:
            results.append(f"{shown}: PyTorch refuses")
            continue
        expected = expected[0] if isinstance(expected, tuple) else expected
        try:
            got = session.run(None, {"input": x.numpy()})[0]
        except Exception as error:  # onnxruntime's own errors: what this script looks for
            results.append(f"{shown}: **fails** ({str(error).splitlines()[0][:80]})")
            continue
        diff = float((torch.from_numpy(got) - expected).abs().max())
        results.append(f"{shown}: {diff:.1e}")
    inputs = session.get_inputs()[0].shape
    return f"{seconds:.1f} s", f"`{inputs}`; " + ", ".join(results)


def main():
    import tempfile

    from pathlib import Path

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    wanted = [a for a in sys.argv[1:] if not a.startswith("--")] or NETWORKS
    rows = ["| network | export | input, and the largest difference at each size |",
            "|---|---:|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for name in wanted:
            export, result = check(name, Path(folder))
            print(name, export, result, flush=True)
            rows.append(f"| `{name}` | {export} | {result} |")
    text = (f"Machine: {machine()}; torch {torch.__version__}, onnxruntime "
            f"{onnxruntime.__version__}.\n\n" + "\n".join(rows))
    if "--write" in sys.argv:
        write_section("onnx-dynamic", text)


if __name__ == "__main__":
    main()
