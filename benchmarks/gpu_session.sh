#!/usr/bin/env bash
# The GPU checks of one device session, in one command (the device tool's machine has
# PyTorch but not lark or graphviz: their wheels travel in .whl/, docs/benchmarks.md says how).
#   bash benchmarks/gpu_session.sh OUT_DIR
# Writes each step's log and the updated docs/benchmarks.md under OUT_DIR; a failing step
# does not stop the others.
out=${1:?an output folder}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out/gpu.txt"
step() {  # name, command...
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" > "$out/$name.log" 2>&1
    echo "   exit $? after $((SECONDS - start)) s"; tail -25 "$out/$name.log"
    cp docs/benchmarks.md "$out/benchmarks.md"
}
step memory python3 benchmarks/memory_estimate.py --device cuda --write
step train python3 -m archdsl train specs/lenet.arch lenet5 --device cuda --amp bf16 \
    --compile --epochs 3 --out "$out/run" --no-progress
rm -rf "$out/run"
# issue 17's last target first: ViT-B/16 bf16 compiled training against torchvision
step vit python3 benchmarks/model_speed.py --device cuda --batch 64 --size 224 \
    --channels-last --amp bf16 --only vit_b_16 --passes train --compiled vit_b_16 \
    --write --section model-speed-cuda-vit
# a character-level GPT (nanoGPT's configuration) on CUDA with AMP and torch.compile, on a text
# made of Python's own sources (the machine reaches no network); --set vocab: its characters
vocab=$(python3 - "$out/text.txt" <<'PY'
import inspect, sys, argparse, collections, json, textwrap, typing
text = "".join(inspect.getsource(m) for m in (argparse, collections, json, textwrap, typing))
open(sys.argv[1], "w", encoding="utf-8").write(text)
print(len(set(text)))
PY
)
step lm python3 -m archdsl train specs/gpt.arch gpt_char --set vocab="$vocab" \
    --data text:"$out/text.txt" --device cuda --amp bf16 --compile --epochs 3 \
    --out "$out/lm" --no-progress --no-tensorboard
# the same text with Llama's layer (rotary embeddings, grouped keys and values, SwiGLU)
step llama python3 -m archdsl train specs/llama.arch llama_char --set vocab="$vocab" \
    --data text:"$out/text.txt" --device cuda --amp bf16 --compile --epochs 3 \
    --out "$out/llama" --no-progress --no-tensorboard
rm -rf "$out/lm" "$out/llama" "$out/text.txt"
# the Transformer (encoder-decoder) learning to reverse strings, on CUDA with AMP and compile
step seq2seq python3 -m archdsl train specs/transformer.arch transformer_reverse --device cuda \
    --amp bf16 --compile --out "$out/s2s" --no-progress --no-tensorboard
rm -rf "$out/s2s"
step lmspeed python3 benchmarks/train_speed_lm.py --device cuda --amp bf16 --compile --write
