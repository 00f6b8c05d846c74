"""Every network of the zoo (specs/): elaborates, passes the graph's lint, and agrees with
PyTorch on every shape, parameter, running statistic and MAC; and the published numbers."""

import json

import pytest
import torch

import archdsl
from archdsl.backends.weights import torchvision_model
from conftest import SPECS
from oracle import check_against_torch

PUBLISHED = json.loads((SPECS.parent / "tests" / "data" / "published_counts.json").read_text())


def all_networks():
    for path in sorted(SPECS.glob("*.arch")):
        spec = archdsl.load(path)
        for name in spec.concrete_networks():
            yield path.name, name


NETWORKS = list(all_networks())


@pytest.mark.parametrize("file,name", NETWORKS, ids=[f"{f}:{n}" for f, n in NETWORKS])
def test_network_against_torch(file, name):
    torch.manual_seed(0)
    net = archdsl.load(SPECS / file).network(name)
    net.graph.lint()
    # the largest (GPT-2 large and XL, ViT-H: 0.6 to 6 GB of weights; YOLOv8l and x: over
    # 50 G MACs at 640x640) are checked on the meta device: the same shapes, counts and MACs,
    # without allocating or computing
    heavy = net.params_total > 300_000_000 or net.macs > 50_000_000_000
    check_against_torch(net, batch=1, device="meta" if heavy else "cpu")


def test_zoo_is_not_empty():
    assert len(NETWORKS) >= 20


@pytest.mark.parametrize("entry", PUBLISHED["exact"], ids=lambda e: e["network"])
def test_exact_published_counts(entry):
    net = archdsl.load(SPECS / entry["file"]).network(entry["network"])
    assert net.params_total == entry["params_total"], entry["source"]
    for key in ("params_trainable", "params_nontrainable"):
        if entry[key] is not None:
            assert getattr(net, key) == entry[key], entry["source"]


@pytest.mark.parametrize("entry", PUBLISHED["millions"], ids=lambda e: e["network"])
def test_counts_round_to_the_papers_millions(entry):
    net = archdsl.load(SPECS / entry["file"]).network(entry["network"])
    assert round(net.params_total / 1e6) == entry["millions"], entry["source"]


@pytest.mark.parametrize("entry", PUBLISHED["torchvision"], ids=lambda e: e["network"])
def test_counts_equal_torchvision(entry):
    net = archdsl.load(SPECS / entry["file"]).network(entry["network"])
    reference = torchvision_model(entry["torchvision"], **entry.get("kwargs", {}))
    assert net.params_trainable == sum(p.numel() for p in reference.parameters())
    running = sum(b.numel() for n, b in reference.named_buffers()
                  if n.endswith(("running_mean", "running_var")))
    assert net.params_nontrainable == running


def test_resnet_family_is_one_definition_plus_one_line_per_variant():
    from archdsl.syntax import ast

    unit = archdsl.load(SPECS / "resnet.arch").unit
    variants = {d.name: d for d in unit.networks() if isinstance(d, ast.Variant)}
    for depth in (18, 34, 50, 101, 152):
        variant = variants[f"resnet{depth}"]
        assert variant.base == "resnet" and variant.span.line == variant.span.end_line


def test_vgg_reads_like_table_1():
    text = (SPECS / "vgg.arch").read_text()
    for column in ("vgg_a", "vgg_a_lrn", "vgg_b", "vgg_c", "vgg_d", "vgg_e"):
        assert f"network {column}(" in text
    assert "conv3-64 LRN" in text and "conv1-512" in text and "FC-4096" in text
    assert "soft-max" in text


@pytest.mark.parametrize("entry", PUBLISHED["resolution"], ids=lambda e: e["network"])
def test_input_resolutions(entry):
    net = archdsl.load(SPECS / entry["file"]).network(entry["network"])
    assert list(net.input_shape) == entry["input"], entry["source"]


@pytest.mark.parametrize("entry", PUBLISHED["macs_billions"], ids=lambda e: e["network"])
def test_published_macs(entry):
    net = archdsl.load(SPECS / entry["file"]).network(entry["network"],
                                                      **entry.get("arguments", {}))
    side = net.totals.macs_side if entry.get("with_side_outputs") else 0
    billions = (net.macs + side) / 1e9
    if "digits" in entry:
        assert round(billions, entry["digits"]) == entry["billions"], (billions, entry["source"])
    else:
        assert abs(billions - entry["billions"]) <= entry["tolerance"] * entry["billions"], \
            (billions, entry["source"])


@pytest.mark.parametrize("file", ["efficientnet.arch", "densenet.arch", "googlenet.arch"])
def test_definitions_fit_on_a_screen_and_variants_on_a_line(file):
    from archdsl.syntax import ast

    unit = archdsl.load(SPECS / file).unit
    for d in unit.module.definitions:
        lines = d.span.end_line - d.span.line + 1
        if isinstance(d, ast.Variant):
            assert lines == 1, d.name
        else:
            assert lines <= 40, (d.name, lines)
