"""The documentation stays true: generated parts are current, every layer and error code is
documented, and the examples and figures quoted in docs/ come out of archdsl."""

import re

import archdsl
from archdsl.cli import layers_markdown
from archdsl.layers import LAYERS
from conftest import ROOT, SPECS

DOCS = ROOT / "docs"


def test_layer_reference_is_generated_from_the_registry():
    kinds = sorted(LAYERS.values(), key=lambda k: (k.family, k.name))
    assert (DOCS / "layers.md").read_text() == layers_markdown(kinds), \
        "regenerate with: archdsl layers --markdown > docs/layers.md"


def test_every_layer_has_its_counting_convention():
    text = (DOCS / "counting.md").read_text()
    for name in LAYERS:
        assert f"`{name}`" in text, name


def test_every_error_code_is_documented():
    used = set()
    for path in (ROOT / "archdsl").rglob("*.py"):
        used |= set(re.findall(r'"(E0\d{3})"', path.read_text()))
    documented = set(re.findall(r"\| (E0\d{3}) \|", (DOCS / "errors.md").read_text()))
    assert used <= documented, used - documented


def test_the_language_guide_example():
    text = (DOCS / "language.md").read_text()
    first = re.search(r"```\n(# VGG.*?)```", text, re.S).group(1)
    net = archdsl.load(first).network("vgg16")
    assert net.params_total == 138_357_544 and round(net.macs / 1e9, 2) == 15.47
    assert "138,357,544 parameters" in text and "15.47 G MACs" in text


def test_the_naming_example_of_the_language_guide():
    net = archdsl.load(SPECS / "resnet.arch").network("resnet50")
    assert "conv3_x.0.add.0.conv_bn1.conv" in net.graph
    vgg = archdsl.load(SPECS / "vgg.arch").network("vgg16")
    names = [n for n, _ in vgg.graph.layers()]
    assert "conv13" in names and "maxpool5" in names and "conv14" not in names


def test_the_readme_python_example():
    text = (ROOT / "README.md").read_text()
    net = archdsl.load(SPECS / "resnet.arch").network("resnet50", classes=10)
    assert f"# {(net.params_trainable, net.macs, net.output_shapes)}" in text
    assert "25,557,032 trainable parameters and 4.09 G MACs" in text
    full = archdsl.load(SPECS / "resnet.arch").network("resnet50")
    assert full.params_trainable == 25_557_032 and round(full.macs / 1e9, 2) == 4.09


def test_the_readme_quickstart_is_two_make_targets_and_ci_calls_the_test_one():
    text = (ROOT / "README.md").read_text()
    assert "    make demo\n" in text and "    make test\n" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "demo: setup" in makefile and "test: setup" in makefile


def test_zoo_table_is_current(capsys, monkeypatch):
    from archdsl.cli import main

    monkeypatch.chdir(SPECS)
    assert main(["zoo", ".", "--markdown"]) == 0
    table = capsys.readouterr().out
    text = (DOCS / "zoo.md").read_text()
    current = text.split("<!-- zoo-table:start -->\n")[1].split("<!-- zoo-table:end -->")[0]
    assert current == table, "regenerate: cd specs && archdsl zoo . --markdown"


def test_zoo_notes_quote_computed_figures():
    text = (DOCS / "zoo.md").read_text()
    net = archdsl.load(SPECS / "hybrids.arch").network("alexnet_vgg")
    convs = sum(sum(n["params"]) for _, n in net.graph.layers() if n["kind"] == "conv")
    dense = sum(sum(n["params"]) for _, n in net.graph.layers() if n["kind"] == "linear")
    assert f"convolutions {convs:,}, dense layers {dense:,}" in text
    assert f"BatchNorm {net.params_nontrainable:,} trainable" in text


def test_gallery_shows_every_network():
    text = (DOCS / "gallery.md").read_text()
    for path in sorted(SPECS.glob("*.arch")):
        for name in archdsl.load(path).concrete_networks():
            assert f"`{name}`" in text or f"### {name}\n" in text, name
    for image in re.findall(r"\]\((gallery/[^)]+\.svg)\)", text):
        assert (DOCS / image).stat().st_size > 1000, image


def test_the_api_guide_figures():
    text = (DOCS / "api.md").read_text()
    net = archdsl.load(SPECS / "resnet.arch").network("resnet50", classes=10)
    assert (f"{net.params:,} / {net.params_trainable:,} / {net.params_nontrainable:,}") in text
    for name in ("load", "list_models", "zoo_network", "create_model", "copy_state",
                 "load_torchvision", "load_huggingface", "register_layer", "unregister_layer"):
        assert hasattr(archdsl, name) and f"archdsl.{name}" in text, name


def test_readme_counts_the_golden_error_cases():
    cases = len(list((ROOT / "tests" / "ui").glob("*.arch")))
    assert f"({cases} golden cases in `tests/ui/`" in (ROOT / "README.md").read_text()
