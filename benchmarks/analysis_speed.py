"""Analysis speed and memory: archdsl against torchinfo and fvcore on the same networks.

    .venv/bin/python benchmarks/analysis_speed.py [--write]

For each network (classics, families after 2019, and a Llama, SmolLM-135M, against
transformers' own model): the whole process (start-up, import, analysis; median of several
runs) and its peak memory (maximum resident set, from /usr/bin/time), and the analysis alone
inside a warm process. archdsl reads the spec and counts without torch; torchinfo and fvcore
build the reference model (allocating its weights) and run it. Also `archdsl check` over the zoo.
Targets: summary <= 0.3 s and >= 15x faster than torchinfo as whole processes; archdsl's
peak memory independent of the network's size; check of the whole zoo <= 1.5 s.
"""

import json
import statistics
import subprocess
import sys
import time

from common import ARCHDSL, ROOT, machine, write_section

TV = "torchvision.models."
GOOGLENET = TV + "googlenet(weights=None, aux_logits=False, init_weights=True)"
YOLO = "__import__('ultralytics.nn.tasks').nn.tasks.DetectionModel('yolov8n.yaml', verbose=False)"
# transformers' own SmolLM-135M (HuggingFaceTB/SmolLM-135M's config.json sizes)
SMOLLM = ("__import__('transformers').LlamaForCausalLM(__import__('transformers').LlamaConfig("
          "hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, "
          "num_key_value_heads=3, vocab_size=49152, max_position_embeddings=2048, "
          "tie_word_embeddings=True))")


def image(size):
    return f"torch.randn(1, 3, {size}, {size})"


NETWORKS = [  # spec file, network, the reference model and its input (Python expressions)
    ("vgg.arch", "vgg19", TV + "vgg19(weights=None)", image(224)),
    ("resnet.arch", "resnet152", TV + "resnet152(weights=None)", image(224)),
    ("densenet.arch", "densenet201", TV + "densenet201(weights=None)", image(224)),
    ("efficientnet.arch", "efficientnet_b7", TV + "efficientnet_b7(weights=None)", image(600)),
    ("googlenet.arch", "googlenet_torchvision_noaux", GOOGLENET, image(224)),
    ("vit.arch", "vit_b_16", TV + "vit_b_16(weights=None)", image(224)),
    ("convnext.arch", "convnext_tiny", TV + "convnext_tiny(weights=None)", image(224)),
    # Ultralytics' own model (importing Ultralytics is part of its process, as for its users)
    ("yolo.arch", "yolov8n", YOLO, image(640)),
    ("llama.arch", "smollm_135m", SMOLLM, "torch.randint(0, 49152, (1, 2048))"),
]
PY = sys.executable


def process(cmd, repeat, may_fail=False):
    """Median wall time (s) and peak resident memory (MB) of a command; None if it fails and
    may."""
    times, peaks = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True,
                              text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            if may_fail:
                return None, None
            raise SystemExit(f"{cmd} failed:\n{done.stderr[-2000:]}")
        peaks.append(int(done.stderr.strip().splitlines()[-1]) / 1024)
    return statistics.median(times), max(peaks)


def torchinfo_code(model, x, timed):
    build = (f"import torch, torchvision, torchinfo, time; t = time.perf_counter(); "
             f"m = {model}.eval(); "
             f"torchinfo.summary(m, input_data={x}, verbose=0)")
    return build + ("; print(time.perf_counter() - t)" if timed else "")


def fvcore_code(model, x, timed):
    build = (f"import torch, torchvision, time; from fvcore.nn import FlopCountAnalysis; "
             f"t = time.perf_counter(); m = {model}.eval(); "
             f"f = FlopCountAnalysis(m, {x}); "
             f"f.unsupported_ops_warnings(False); f.uncalled_modules_warnings(False); f.total()")
    return build + ("; print(time.perf_counter() - t)" if timed else "")


def archdsl_code(file, name):
    return (f"import time, archdsl; t = time.perf_counter(); "
            f"n = archdsl.load('specs/{file}').network('{name}'); n.to_json(); "
            f"print(time.perf_counter() - t)")


def in_process(code, may_fail=False):
    """Seconds of the analysis alone, imports done (reported by the code itself)."""
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        if may_fail:
            return None
        raise SystemExit(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def main():
    # A regular `pip install` byte-compiles the package, as it did torch, torchvision and
    # torchinfo; an editable install leaves that to the first import, which cannot write it
    # where PYTHONDONTWRITEBYTECODE is set (as on the machine of these figures): archdsl's
    # every process would then compile its sources again (about 45 ms)
    subprocess.run([PY, "-m", "compileall", "-q", "archdsl"], cwd=ROOT, check=True)
    rows = []
    for file, name, model, x in NETWORKS:
        a_time, a_mem = process(ARCHDSL + ["summary", f"specs/{file}", name, "--json"], 7)
        t_time, t_mem = process([PY, "-c", torchinfo_code(model, x, False)], 3)
        # fvcore traces the model: a detector's dict of outputs, or transformers' cache,
        # defeats it
        f_time, f_mem = process([PY, "-c", fvcore_code(model, x, False)], 3, may_fail=True)
        a_in = statistics.median(in_process(archdsl_code(file, name)) for _ in range(3))
        t_in = in_process(torchinfo_code(model, x, True))
        f_in = in_process(fvcore_code(model, x, True), may_fail=True)
        rows.append((name, a_time, a_mem, t_time, t_mem, f_time, f_mem, a_in, t_in, f_in))
        print(rows[-1], flush=True)
    check, _ = process(ARCHDSL + ["check", "specs"], 5)
    zoo = subprocess.run(ARCHDSL + ["zoo", "specs", "--json"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    networks = len(json.loads(zoo.stdout))
    table = ["| network | archdsl summary (process) | torchinfo (process) | fvcore (process) | "
             "speed-up vs torchinfo | archdsl / torchinfo / fvcore, analysis only |",
             "|---|---|---|---|---|---|"]
    for name, a, am, t, tm, f, fm, ai, ti, fi in rows:
        fv = f"{f:.2f} s, {fm:.0f} MB" if f is not None else "fails (cannot trace its outputs)"
        fvi = f"{fi * 1000:.0f} ms" if fi is not None else "—"
        table.append(f"| {name} | {a * 1000:.0f} ms, {am:.0f} MB | {t:.2f} s, {tm:.0f} MB | "
                     f"{fv} | {t / a:.1f}x | {ai * 1000:.0f} ms / {ti * 1000:.0f} ms / {fvi} |")
    worst = max(r[1] for r in rows)
    least = min(r[3] / r[1] for r in rows)
    mems = [r[2] for r in rows]
    text = "\n".join([
        f"Machine: {machine()}. Whole processes: median of 7 (archdsl) or 3 runs; memory: "
        "peak resident set. archdsl is byte-compiled first, as `pip install` byte-compiles "
        "it and torch (this machine sets PYTHONDONTWRITEBYTECODE, so an editable install "
        "would compile its sources in every process: about 45 ms).", "", *table, "",
        f"`archdsl check specs/` (the whole zoo, {networks} networks): {check * 1000:.0f} ms.",
        "",
        f"Slowest archdsl summary {worst * 1000:.0f} ms (target 300 ms: "
        f"{'met' if worst <= 0.3 else 'missed'}); smallest speed-up over torchinfo "
        f"{least:.1f}x (target 15x: {'met' if least >= 15 else 'missed'}); archdsl's peak memory "
        f"{min(mems):.0f}–{max(mems):.0f} MB whatever the network; check of the zoo "
        f"{'met' if check <= 1.5 else 'missed'} (target 1.5 s for the whole zoo, which doubled "
        "with the networks after 2019)."])
    print(text)
    if "--write" in sys.argv:
        write_section("analysis-speed", text)


if __name__ == "__main__":
    main()
