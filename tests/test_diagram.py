"""Diagrams: DOT structure against golden files, every zoo network at depths 1, 2 and full,
valid SVG and PNG, and a clear message when Graphviz is missing."""

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import archdsl
from archdsl.backends.diagram import to_dot
from archdsl.cli import main
from conftest import SPECS

GOLDEN = Path(__file__).parent / "golden"

RESIDUAL = """
block conv_bn(c, k, s=1):
    conv(c, k, stride=s, pad=same, bias=false) bn

block residual(c, s=1):
    add:
        branch: conv_bn(c, 3, s) relu conv_bn(c, 3)
        branch shortcut: identity if s == 1 and in.c == c else conv_bn(c, 1, s)
    relu

network tiny(classes=10):
    input 3x32x32
    stem: conv_bn(16, 3) relu
    stage1: residual(16) residual(16)
    stage2: residual(32, 2)
    output features: gap
    head: gap linear(classes)
"""

CASES = {
    "lenet5_full": (SPECS / "lenet.arch", "lenet5", None),
    "tiny_full": (RESIDUAL, "tiny", None),
    "tiny_depth1": (RESIDUAL, "tiny", 1),
    "tiny_depth2": (RESIDUAL, "tiny", 2),
    "googlenet_depth1": (SPECS / "googlenet.arch", "googlenet", 1),
}


def load(source, name):
    return archdsl.load(source).network(name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dot_text_against_golden(case):
    source, name, depth = CASES[case]
    text = to_dot(load(source, name), depth=depth).source
    golden = GOLDEN / f"{case}.dot"
    if os.environ.get("ARCHDSL_BLESS"):
        golden.write_text(text)
    assert text == golden.read_text()


def clusters(text):
    return re.findall(r"subgraph \"?cluster_([^\" ]+)", text)


def test_structure_full():
    text = to_dot(load(RESIDUAL, "tiny")).source
    assert {"stage1.0", "stage1.1", "stage2", "stage2.add.shortcut"} <= set(clusters(text))
    assert "stage1.0.add.shortcut" not in clusters(text)  # an identity shortcut draws no node
    assert "conv 3x3, 16" in text and "16x32x32" in text  # notation and shape in labels
    assert 'label=" 32x16x16"' in text  # edges carry shapes
    assert 'label="+"' in text and "shape=circle" in text  # the add is drawn as a merge
    assert "side output `features`" in text and "shape=note" in text


def test_depth_collapses_frames_into_nodes():
    net = load(RESIDUAL, "tiny")
    text = to_dot(net, depth=1).source
    assert clusters(text) == []  # every frame is one node
    for frame in ("stem", "stage1", "stage2", "head"):
        assert f'"group/{frame}"' in text
    full = len(re.findall(r"^\s+\S+ \[label=", to_dot(net).source, re.M))
    collapsed = len(re.findall(r"^\s+\S+ \[label=", text, re.M))
    assert collapsed < full
    assert "params" in text and "MACs" in text  # collapsed nodes show their totals


NETWORKS = [(f.name, n) for f in sorted(SPECS.glob("*.arch")) for n in archdsl.load(f).concrete_networks()]


@pytest.mark.parametrize("file,name", NETWORKS, ids=[n for _, n in NETWORKS])
def test_every_network_renders_at_depth_1_2_and_full(file, name):
    net = load(SPECS / file, name)
    for depth in (1, 2, None):
        svg = to_dot(net, depth=depth).pipe(format="svg")
        ET.fromstring(svg)  # well-formed


def test_draw_command_writes_svg_png_pdf_and_dot(tmp_path, capsys):
    for ext, magic in (("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF"), ("dot", b"digraph")):
        out = tmp_path / f"net.{ext}"
        assert main(["draw", str(SPECS / "vgg.arch"), "vgg16", "-o", str(out)]) == 0
        assert out.read_bytes().startswith(magic), ext


def test_missing_graphviz_is_explained_and_dot_still_works(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on the path
    status = main(["draw", str(SPECS / "lenet.arch"), "lenet5", "-o", str(tmp_path / "x.svg")])
    err = capsys.readouterr().err
    assert status == 2 and "not installed" in err and "apt-get install graphviz" in err
    assert main(["draw", str(SPECS / "lenet.arch"), "lenet5", "-o", str(tmp_path / "x.dot")]) == 0


def test_unknown_format_is_a_usage_error(tmp_path, capsys):
    assert main(["draw", str(SPECS / "lenet.arch"), "lenet5", "-o", str(tmp_path / "x.jpg")]) == 2
    assert "use .svg, .png, .pdf or .dot" in capsys.readouterr().err


def test_jupyter_shows_the_diagram():
    svg = load(SPECS / "lenet.arch", "lenet5")._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "conv 5x5, 6" in svg


def test_too_many_boxes_are_refused_before_graphviz_runs(tmp_path, capsys):
    from archdsl.backends.diagram import MAX_DIAGRAM_BOXES

    spec = tmp_path / "long.arch"
    spec.write_text(f"network n:\n    input 3x8x8\n    relu x {MAX_DIAGRAM_BOXES + 1}\n")
    assert main(["draw", str(spec), "-o", str(tmp_path / "long.svg")]) == 2
    err = capsys.readouterr().err
    assert f"{MAX_DIAGRAM_BOXES + 1:,} boxes" in err and "--depth" in err
    assert not (tmp_path / "long.svg").exists()
    # DOT text has no such limit: it is only written
    assert main(["draw", str(spec), "-o", str(tmp_path / "long.dot")]) == 0


def test_names_show_the_state_dict_prefix_of_each_layer(tmp_path):
    net = archdsl.load(SPECS / "resnet.arch").network("resnet18")
    prefixes = {key.rsplit(".", 1)[0] for key in net.build().state_dict()}
    shown = set(re.findall(r'color="#444444">([\w.]+)</font>', to_dot(net, names=True).source))
    assert prefixes <= shown  # every module with weights is named as its keys name it
    plain = set(re.findall(r'color="#444444">([\w.]+)</font>', to_dot(net).source))
    assert not prefixes & plain  # only with names


def test_collapsed_repeats_say_how_many(tmp_path):
    vit = to_dot(archdsl.load(SPECS / "vit.arch").network("vit_b_16"), depth=1).source
    assert "encoder · encoder_layer(heads=12, mlp=3072) × 12" in vit
    resnet = to_dot(archdsl.load(SPECS / "resnet.arch").network("resnet50"), depth=1).source
    assert "bottleneck × 6" in resnet  # conv4_x: six bottleneck calls (the first strided)


def test_dpi_scales_a_png_and_is_refused_elsewhere(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image

    lenet = [str(SPECS / "lenet.arch"), "lenet5"]
    assert main(["draw", *lenet, "-o", str(tmp_path / "a.png")]) == 0
    assert main(["draw", *lenet, "-o", str(tmp_path / "b.png"), "--dpi", "192"]) == 0
    small, large = (Image.open(tmp_path / f).size for f in ("a.png", "b.png"))
    assert abs(large[0] / small[0] - 2) < 0.05
    assert main(["draw", *lenet, "-o", str(tmp_path / "c.svg"), "--dpi", "192"]) == 2
    assert "--dpi sets the resolution of a .png" in capsys.readouterr().err


def test_notebooks_see_two_levels_and_choose_others(capsys):
    net = archdsl.load(SPECS / "vit.arch").network("vit_ti_16")
    svg = net._repr_svg_()
    ET.fromstring(svg)  # valid SVG
    assert svg.count("encoder_layer(heads=3, mlp=768)") == 12  # one box per encoder layer
    one = net.draw(depth=1)
    assert "× 12" in one.source and one._repr_svg_().startswith("<?xml")
    assert capsys.readouterr().err == ""  # no Graphviz warnings on the way
