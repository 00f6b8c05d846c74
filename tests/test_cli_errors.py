"""Golden tests of command-line mistakes: every wrong option, path or file a user can give
gets a clear one-line answer and exit status 2 (or 1 for errors in a spec), never a traceback.

tests/cli/errors.txt holds, for each case, the command, its exit status and its stderr.
To regenerate after an intended change: ARCHDSL_BLESS=1 pytest tests/test_cli_errors.py, then
review the diff before committing.
"""

import os
import shlex

from archdsl.cli import main
from conftest import ROOT

GOLDEN = ROOT / "tests" / "cli" / "errors.txt"

LENET = "specs/lenet.arch lenet5"
TRAIN = f"train {LENET} --no-progress --no-tensorboard --out {{tmp}}/run"
GPT = ("train specs/gpt.arch gpt --set depth=1 --set d=16 --set heads=2 --set context=16 "
       "--set vocab=40 --no-progress --no-tensorboard --out {tmp}/run")

S2S = ("train specs/transformer.arch transformer_reverse --no-progress --no-tensorboard "
       "--out {tmp}/run")

# specs/llama.arch at the sizes of the small Mistral that `scratch` writes
MISTRAL = ("specs/llama.arch llama --set depth=1 --set d=16 --set heads=2 --set kv_heads=1 "
           "--set context=16 --set vocab=40 --set multiple=16")

# Commands, run from the repository root; {tmp} is a scratch folder holding the files made by
# `scratch` below (a checkpoint with an unsafe name, a damaged one, a file that is no checkpoint).
CASES = [
    f"{TRAIN} --batch-size 0",
    f"{TRAIN} --epochs 0",
    f"{TRAIN} --lr -1",
    f"{TRAIN} --lr nan",
    f"{TRAIN} --momentum 1",
    f"{TRAIN} --weight-decay -0.1",
    f"{TRAIN} --val-split 1.5",
    f"{TRAIN} --label-smoothing 1",
    f"{TRAIN} --warmup-epochs -1",
    f"{TRAIN} --step-epochs 0",
    f"{TRAIN} --gamma 0",
    f"{TRAIN} --clip-grad 0",
    f"{TRAIN} --seed -1",
    f"{TRAIN} --save-every -1",
    f"{TRAIN} --limit-steps -1",
    f"{TRAIN} --fake-size 1 --data fake",
    f"{TRAIN} --nproc 0",
    f"{TRAIN} --epochs many",
    f"{TRAIN} --optimizer adam",
    "train --no-progress",
    "train --resume {tmp}/no-such-run",
    "train --resume {tmp}/unsafe.pt",
    "eval {tmp}/no-such.pt",
    "eval {tmp}/not-a-checkpoint.pt",
    "eval {tmp}/unsafe.pt",
    "eval {tmp}/unsafe.pt --data digits",
    "eval {tmp}/saved.pt",
    "predict {tmp}/saved.pt specs",
    "predict {tmp}/no-such.pt x.png",
    "predict {tmp}/saved.pt specs --top-k 0",
    "train specs/unet.arch unet_small --data digits --no-progress --out {tmp}/run",
    "train specs/unet.arch unet_small --task classify --no-progress --out {tmp}/run",
    f"{TRAIN} --data shapes",
    f"{TRAIN} --ema 1",
    f"{TRAIN} --patience 2 --val-split 0",
    f"{TRAIN} --accumulate 3 --save-every 10",
    "eval {tmp}/saved.pt --confusion {tmp}/cm.gif",
    "train --resume {tmp}/saved.pt",
    "eval {tmp}/damaged.pt",
    "eval {tmp}/damaged.pt --batch-size 0",
    "compile {tmp}/unsafe.pt",
    "summary {tmp}/unsafe.pt",
    f"compile {LENET} --weights {{tmp}}/not-a-checkpoint.pt",
    "summary specs/lenet.arch",
    "summary specs/lenet.arch lenet5 --input 0x32x32",
    "summary specs/lenet.arch lenet5 --set classes",
    "summary no/such/file.arch",
    "summary specs",
    "summary {tmp}/notes.txt",
    "check {tmp}/empty",
    "check no/such/folder",
    f"draw {LENET} -o {{tmp}}/net.svg --depth 0",
    f"draw {LENET} -o {{tmp}}/net.png --dpi 5",
    f"draw {LENET} -o {{tmp}}/net.svg --dpi 300",
    f"draw {LENET} -o {{tmp}}/net.jpeg",
    f"compile {LENET} -o {{tmp}}/net.h5",
    "check specs --plugin no_such_plugin_module",
    "check specs --plugin {tmp}/missing.py",
    "frobnicate",
    "train specs/fpn.arch resnet18_fpn --no-progress --no-tensorboard --out {tmp}/run",
    "train specs/gpt.arch gpt2 --no-progress --no-tensorboard --out {tmp}/run",
    "train {tmp}/fusion.arch --no-progress --no-tensorboard --out {tmp}/run",
    # outputs: one writer, `cannot write PATH: reason` (issue 18)
    f"draw {LENET} -o /nonexistent/dir/x.png",
    f"draw {LENET} -o {{tmp}}/notes.txt/x.svg",
    f"compile {LENET} -o {{tmp}}/nodir/x.py",
    f"compile {LENET} -o {{tmp}}/nodir/x.onnx",
    f"compile {LENET} -o {{tmp}}/nodir/x.pt",
    f"compile {LENET} -o {{tmp}}/folder.py",
    # dynamic sizes: for an .onnx, of a network that takes other sizes, in ONNX too
    "compile specs/resnet.arch resnet18 --dynamic",
    "compile specs/resnet.arch resnet18 -o {tmp}/r.py --dynamic",
    f"compile {LENET} -o {{tmp}}/lenet.onnx --dynamic",
    "compile specs/vgg.arch vgg11_bn -o {tmp}/vgg.onnx --dynamic",
    "compile specs/googlenet.arch googlenet -o {tmp}/googlenet.onnx --dynamic",
    "compile specs/char_rnn.arch char_gru -o {tmp}/char_gru.onnx --dynamic",
    "compile specs/swin.arch swin_t -o {tmp}/swin_t.onnx --dynamic",
    "zoo specs/lenet.arch --plot {tmp}/x.jpgx",
    "zoo specs/lenet.arch --plot {tmp}/nodir/x.png",
    "zoo {tmp}/notes.txt --plot {tmp}/zoo.png",
    f"train {LENET} --no-progress --no-tensorboard --out {{tmp}}/notes.txt/run",
    # data
    f"{TRAIN} --data imagefolder:",
    f"{TRAIN} --data imagenet",
    "train specs/lenet.arch lenet5_cifar10 --no-progress --no-tensorboard --out {tmp}/run "
    "--data imagefolder:{tmp}/broken-images",
    "eval {tmp}/three.pt --data digits",
    # resuming: only what may change, from a checkpoint that can be resumed
    "train --resume {tmp}/relu-run --lr 0.1",
    "train specs/lenet.arch lenet5 --resume {tmp}/relu-run",
    "train --resume {tmp}/relu-run --epochs 1",
    "train --resume {tmp}/no-optimizer.pt",
    "train --resume {tmp}/epoch-string.pt",
    "train --resume {tmp}/wrong-shape.pt",
    "eval {tmp}/wrong-shape.pt",
    "eval {tmp}/flipped.pt",
    "train --resume {tmp}/ema-changed.pt",
    "eval {tmp}/module.pt",
    "eval {tmp}/junk.pt",
    # compiling a checkpoint's weights
    f"compile {LENET} --weights {{tmp}}/relu-run/best.pt -o {{tmp}}/x.pt",
    f"compile {LENET} --set act=relu --weights {{tmp}}/relu-run/best.pt -o {{tmp}}/x.py",
    "compile specs/resnet.arch resnet18 --torchvision resnet81",
    # a Hugging Face model's weights from a folder that holds none
    "compile specs/gpt.arch gpt2 --weights huggingface:{tmp}/no-such-folder -o {tmp}/x.pt",
    "compile specs/gpt.arch gpt2 --weights huggingface:specs -o {tmp}/x.pt",
    "compile specs/gpt.arch gpt2 --weights huggingface:./specs/gpt.arch -o {tmp}/x.pt",
    f"{GPT} --data text:{{tmp}}/fox.txt --init huggingface:{{tmp}}/no-such-folder",
    # a Hugging Face model whose sliding window or rotary base the spec does not have
    f"compile {MISTRAL} --weights huggingface:{{tmp}}/mistral -o {{tmp}}/x.pt",
    f"compile {MISTRAL} --set sliding_window=8 --set theta=500.0 "
    "--weights huggingface:{tmp}/mistral -o {tmp}/x.pt",
    # language models: text data, and the networks that can learn from it
    f"{GPT} --data digits",
    f"{GPT} --data text:",
    f"{GPT} --data text:{{tmp}}/no-such.txt",
    f"{GPT} --data text:{{tmp}}/empty",
    f"{GPT} --data text:{{tmp}}/latin1.txt",
    f"{GPT} --data text:{{tmp}}/short.txt",
    f"{GPT} --set vocab=20 --data text:{{tmp}}/fox.txt",
    f"{TRAIN} --data text:{{tmp}}/fox.txt",
    "train {tmp}/bidirectional.arch --no-progress --no-tensorboard --out {tmp}/run "
    "--data text:{tmp}/fox.txt",
    "train {tmp}/tagger.arch --no-progress --no-tensorboard --out {tmp}/run "
    "--data text:{tmp}/fox.txt",
    "train {tmp}/encoder.arch --no-progress --no-tensorboard --out {tmp}/run "
    "--data text:{tmp}/fox.txt",
    "generate {tmp}/saved.pt",
    "generate {tmp}/no-such.pt",
    "generate {tmp}/lm-run --length 0",
    "generate {tmp}/lm-run --temperature nan",
    "generate {tmp}/lm-run --top-k 0",
    "generate {tmp}/lm-run --prompt ''",
    "generate {tmp}/lm-run --prompt 'THE FOX'",
    "predict {tmp}/lm-run x.png",
    "eval {tmp}/lm-run --data text:{tmp}/latin1-utf8.txt",
    "eval {tmp}/lm-run --data text:{tmp}/short.txt --split all",
    f"{GPT} --data text:{{tmp}}/upper.txt --init {{tmp}}/lm-run/best.pt",
    # sequence-to-sequence models: pairs of texts, and the networks that can learn from them
    f"{S2S} --data digits",
    f"{S2S} --data text:{{tmp}}/fox.txt",
    f"{GPT} --data reverse",
    f"{TRAIN} --data pairs:{{tmp}}/pairs.tsv",
    f"{S2S} --data pairs:",
    f"{S2S} --data pairs:{{tmp}}/no-such.tsv",
    f"{S2S} --data pairs:{{tmp}}/no-tab.tsv",
    f"{S2S} --data pairs:{{tmp}}/one.tsv",
    f"{S2S} --data pairs:{{tmp}}/long-source.tsv",
    f"{S2S} --data pairs:{{tmp}}/long-target.tsv",
    f"{S2S} --set vocab=20",
    "train {tmp}/peeking.arch --no-progress --no-tensorboard --out {tmp}/run",
    "train specs/bert.arch bert_base --no-progress --no-tensorboard --out {tmp}/run",
    "generate {tmp}/s2s-run --prompt 'ABC'",
    "generate {tmp}/s2s-run --prompt abcdefghijkl",
    "predict {tmp}/s2s-run x.png",
    "eval {tmp}/s2s-run --data pairs:{tmp}/upper.tsv",
    # another image folder than the run's: its classes must be the model's
    "eval {tmp}/relu-run --data imagefolder:{tmp}/cats --split all",
    # the command line itself
    "layers convv",
    "lsp --port 2087",
    "check specs/lenet.arch --frobnicate",
    f"summary {LENET} --depth 0",
    f"summary {LENET} --batch 0",
    f"summary {LENET} --batch 8 --optimizer adam",
    f"summary {LENET} --params tensorflow",
]


def scratch(tmp):
    """The files the cases refer to."""
    import torch

    import archdsl
    from archdsl.backends.export import saved_spec
    from archdsl.train import checkpoint

    net = archdsl.load(ROOT / "specs" / "lenet.arch").network("lenet5")
    state = {**saved_spec(net), "model": net.build().state_dict()}
    checkpoint.save(tmp / "saved.pt", state)
    checkpoint.save(tmp / "unsafe.pt", {**state, "spec_files": {
        **state["spec_files"], "../../.bashrc.arch": "block evil:\n    relu\n"}})
    checkpoint.save(tmp / "damaged.pt", {**state, "config": {"batch_size": -3}})
    torch.save({"weights": torch.zeros(3)}, tmp / "not-a-checkpoint.pt")
    (tmp / "notes.txt").write_text("network n:\n    input 3\n    relu\n")
    (tmp / "fusion.arch").write_text("network fusion:\n    input image: 3x32x32\n"
                                     "    input meta: 12\n    conv(8, 3) gap flatten\n"
                                     "    concat:\n        branch: identity\n"
                                     "        branch: from meta linear(8)\n    linear(10)\n")
    (tmp / "empty").mkdir()
    (tmp / "folder.py").mkdir()
    torch.save(torch.nn.Linear(2, 2), tmp / "module.pt")  # a pickled module, not tensors
    (tmp / "junk.pt").write_bytes(bytes(range(256)) * 4)
    compiled = archdsl.load(ROOT / "specs" / "lenet.arch").network("lenet5", classes=3)
    checkpoint.save(tmp / "three.pt", {**saved_spec(compiled),
                                       "model": compiled.build().state_dict()})
    _broken_images(tmp / "broken-images")
    _cats(tmp / "cats")
    _mistral(tmp / "mistral")
    # a real run, trained with --set act=relu for 2 epochs, and damaged copies of it
    assert main(["train", "specs/lenet.arch", "lenet5", "--set", "act=relu", "--epochs", "2",
                 "--limit-steps", "2", "--no-progress", "--no-tensorboard",
                 "--out", str(tmp / "relu-run")]) == 0
    trained = checkpoint.load(tmp / "relu-run" / "last.pt")

    def damaged(name, change):
        copy = {k: v for k, v in trained.items() if k not in ("format", "checksum")}
        change(copy)
        checkpoint.save(tmp / name, copy)

    damaged("no-optimizer.pt", lambda s: s.pop("optimizer"))
    damaged("epoch-string.pt", lambda s: s.update(epoch="3"))
    damaged("wrong-shape.pt", lambda s: s.update(model={**s["model"],
                                                        "conv1.weight": torch.zeros(3, 3)}))
    data = bytearray((tmp / "relu-run" / "last.pt").read_bytes())
    weight = trained["model"]["conv1.weight"].flatten()[:4].numpy().tobytes()
    data[data.find(weight) + 1] ^= 0xFF  # one flipped byte inside the weights
    (tmp / "flipped.pt").write_bytes(bytes(data))
    # an --ema checkpoint whose trained weights (what --resume goes on from) were changed
    # after it was written: their checksum no longer fits
    changed = {k: v for k, v in trained.items()}
    changed["trained"] = {k: v + 1 if v.is_floating_point() else v
                          for k, v in trained["model"].items()}
    changed["trained_checksum"] = checkpoint.checksum(trained["model"])
    torch.save(changed, tmp / "ema-changed.pt")
    _language_model_files(tmp)


def _language_model_files(tmp):
    """Texts, networks that cannot learn from them, and a language model trained briefly."""
    (tmp / "fox.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    (tmp / "short.txt").write_text("the quick brown fox\n")
    (tmp / "upper.txt").write_text("THE QUICK BROWN FOX\n" * 40)
    (tmp / "latin1.txt").write_bytes("naïve café\n".encode("latin-1") * 40)
    (tmp / "latin1-utf8.txt").write_text("naïve café\n" * 40)
    lm = "    input 16 tokens of 40\n    embedding(16)\n"
    (tmp / "bidirectional.arch").write_text(
        "network bidirectional:\n" + lm + "    lstm(16, bidirectional=true) linear(40)\n")
    (tmp / "tagger.arch").write_text("network tagger:\n" + lm + "    gru(16) linear(5)\n")
    (tmp / "encoder.arch").write_text(
        "network encoder:\n" + lm + "    h: attention(2)\n    linear(40)\n")
    _pairs_files(tmp)
    assert main(["train", "specs/gpt.arch", "gpt", "--set", "depth=1", "--set", "d=16",
                 "--set", "heads=2", "--set", "context=16", "--set", "vocab=40",
                 "--data", f"text:{tmp / 'fox.txt'}", "--epochs", "1", "--limit-steps", "2",
                 "--batch-size", "8", "--no-progress", "--no-tensorboard",
                 "--out", str(tmp / "lm-run")]) == 0


def _pairs_files(tmp):
    """Pairs of texts, a decoder that sees later targets, and a sequence-to-sequence model
    trained briefly."""
    (tmp / "pairs.tsv").write_text("cat\ttac\ndog\tgod\n" * 10)
    (tmp / "no-tab.tsv").write_text("cat\ttac\ndog god\n")
    (tmp / "one.tsv").write_text("cat\ttac\n")
    (tmp / "long-source.tsv").write_text("cat\ttac\nabcdefghijkl\tl\n")
    (tmp / "long-target.tsv").write_text("cat\ttac\nl\tabcdefghij\n")
    (tmp / "upper.tsv").write_text("CAT\tTAC\n" * 10)
    (tmp / "peeking.arch").write_text(
        "network peeking:\n    input source: 8 tokens of 29\n    input target: 8 tokens of 29\n"
        "    memory: embedding(16)\n    from target\n    embedding(16)\n    attention(2)\n"
        "    cross_attention(2, memory=memory)\n    linear(29)\n")
    assert main(["train", "specs/transformer.arch", "transformer_reverse", "--epochs", "1",
                 "--limit-steps", "2", "--batch-size", "8", "--fake-size", "64",
                 "--no-progress", "--no-tensorboard", "--out", str(tmp / "s2s-run")]) == 0


def _cats(folder):
    """An image folder whose one class no run of these cases trained on."""
    import numpy as np
    from PIL import Image

    (folder / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "cat" / "0.png")


def _mistral(folder):
    """A small Mistral 7B v0.1-like model (a sliding window of 8 positions, θ = 10000), as
    Hugging Face's save_pretrained writes it."""
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.MistralForCausalLM(transformers.MistralConfig(
        vocab_size=40, hidden_size=16, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16,
        sliding_window=8, rms_norm_eps=1e-5)).save_pretrained(folder)


def _broken_images(folder):
    import numpy as np
    from PIL import Image

    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / label / f"{i}.png")
    (folder / "a" / "broken.png").write_bytes(b"not an image")


def run_case(command, tmp, capsys):
    argv = [a.replace("{tmp}", str(tmp)) for a in shlex.split(command)]
    status = main(argv)
    err = capsys.readouterr().err.replace(str(tmp), "{tmp}")
    return status, err


def test_command_line_mistakes_get_clear_answers(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    scratch(tmp_path)
    capsys.readouterr()  # what making the scratch files printed
    answers = []
    for command in CASES:
        status, err = run_case(command, tmp_path, capsys)
        assert status in (1, 2), (command, status, err)
        assert "Traceback" not in err and "internal error" not in err, (command, err)
        assert err.strip(), command
        answers.append(f"$ archdsl {command}\nexit {status}\n{err.rstrip()}\n")
    text = "\n".join(answers)
    if os.environ.get("ARCHDSL_BLESS"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
