"""Writing text a token at a time: with the cache (only the new token is read; the attention
layers keep the earlier keys and values, train/text.py) against reading the whole window for
every token, for GPT-2 small, nanoGPT's character GPT, SmolLM-135M and the character Llama
(whose cache holds the keys already turned by their positions, and only the key/value heads:
a third of GPT's at the same width). Random weights: the speed does not depend on them. Both
ways write the same ids, which the script checks.

    .venv/bin/python benchmarks/generate_speed.py [--write]

Tokens per second for 128 tokens after a prompt of 16, and for 512 after 16 (the character
model's 256 context is passed there, so the cache is set aside after 240 tokens and the
window read whole again), greedy, one process, on the CPU.
"""

import sys
import time

import torch

import archdsl
from archdsl.train.text import decodes_with_cache, generate
from common import ROOT, machine, write_section

RUNS = [("gpt.arch", "gpt2", 128), ("gpt.arch", "gpt_char", 128), ("gpt.arch", "gpt_char", 512),
        ("llama.arch", "smollm_135m", 128), ("llama.arch", "llama_char", 128)]
PROMPT = 16


def tokens_per_second(model, net, count: int, cached: bool) -> tuple[float, list]:
    context, vocab = net.input_shape[0], net.input_shape.vocab
    prompt = list(range(PROMPT))
    start = time.perf_counter()
    ids = generate(model, prompt, count, context, vocab, cached=cached, temperature=0)
    return count / (time.perf_counter() - start), ids


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for file, name, count in RUNS:
        net = archdsl.load(ROOT / "specs" / file).network(name)
        assert decodes_with_cache(net), name
        model = net.build().eval()
        generate(model, [0], 2, net.input_shape[0], 10, cached=True)  # warm-up
        whole, a = tokens_per_second(model, net, count, cached=False)
        cached, b = tokens_per_second(model, net, count, cached=True)
        same = "yes" if a == b else "NO"
        rows.append(f"| `{name}` | {net.params_total:,} | {net.input_shape[0]} | {count} | "
                    f"{whole:.1f} | {cached:.1f} | {cached / whole:.1f}x | {same} |")
        print(rows[-1], flush=True)
    table = "\n".join([
        f"Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| network | params | context | tokens written | whole window (tokens/s) | "
        "cached (tokens/s) | speed-up | same ids |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows])
    if "--write" in sys.argv:
        write_section("generate-speed", table)
    else:
        print(table)


if __name__ == "__main__":
    main()
