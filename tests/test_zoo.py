"""`archdsl zoo`: the table, the JSON, the chart, and the depth rule."""

import json

import pytest

import archdsl
from archdsl.cli import main
from archdsl.zoo import depth
from conftest import SPECS


def test_zoo_json(capsys):
    assert main(["zoo", str(SPECS), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 50
    for row in rows:
        assert {"file", "network", "input", "params_total", "params_trainable",
                "params_nontrainable", "macs"} <= set(row)
    names = {r["network"] for r in rows}
    assert {"googlenet", "densenet264", "efficientnet_b7", "xception_seed", "alexnet_vgg_resnet",
            "inception10", "resnet18_cifar10", "baseline", "alexnet8", "vgg16_cifar10",
            "lenet5_cifar10", "preact_resnet50", "resnet50_v1", "alexnet_original"} <= names


def test_zoo_plot(capsys, tmp_path):
    out = tmp_path / "zoo.png"
    assert main(["zoo", str(SPECS / "resnet.arch"), str(SPECS / "vgg.arch"), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


@pytest.mark.parametrize("file,name,expected", [
    ("vgg.arch", "vgg16", 16), ("vgg.arch", "vgg19", 19), ("resnet.arch", "resnet50", 50),
    ("resnet.arch", "resnet152", 152), ("googlenet.arch", "googlenet", 22),
    ("densenet.arch", "densenet121", 121), ("densenet.arch", "densenet201", 201),
    ("lenet.arch", "lenet5", 5), ("alexnet.arch", "alexnet_original", 8),
])
def test_depth_is_the_papers_count_of_weight_layers(file, name, expected):
    assert depth(archdsl.load(SPECS / file).network(name).graph) == expected


def test_counts_read_in_thousands_up_to_peta():
    """Llama 3.1's 131,072 positions cost 5.5 peta multiply-adds: not `5487.25 T`."""
    from archdsl.report import human

    assert [human(n) for n in (999, 1_500, 2_720_000_000, 31_460_000_000_000,
                               5_487_250_217_369_600)] == \
        ["999", "1.50 K", "2.72 G", "31.46 T", "5.49 P"]
