"""The language server (issue 20), driven as an editor drives it: `archdsl lsp` in a
subprocess, JSON-RPC over stdio (tests/lsp_client.py).

Diagnostics are checked against `archdsl check --format json` on every golden error case and
every zoo spec; hovers against the shapes archdsl computes (and PyTorch confirms elsewhere);
renames by applying them and checking the renamed file again.
"""

import io
import json
import os
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from archdsl.cli import main as cli
from archdsl.syntax.format import format_text
from conftest import ROOT, SPECS
from lsp_client import Client, ServerError, position_of

UI = ROOT / "tests" / "ui"


@pytest.fixture(scope="module")
def client():
    c = Client()
    yield c
    assert c.close() == 0
    log = b"".join(c.stderr).decode(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def logged_errors(c: Client) -> list[str]:
    """The internal errors the server logged so far (window/logMessage); other
    notifications are put back."""
    kept, errors = [], []
    while not c.notifications.empty():
        message = c.notifications.get()
        if message.get("method") == "window/logMessage":
            errors.append(message["params"]["message"])
        else:
            kept.append(message)
    for message in kept:
        c.notifications.put(message)
    return errors


def check_json(path: Path) -> list[dict]:
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with redirect_stdout(out):
            cli(["check", path.name, "--format", "json"])
    finally:
        os.chdir(cwd)
    return json.loads(out.getvalue())


def opened(c: Client, path: Path, text: str | None = None) -> tuple[str, list]:
    uri = c.open(path, text)
    return uri, c.diagnostics(uri, 1)


def hover(c: Client, uri: str, text: str, needle: str, offset: int = 1) -> str:
    result = c.request("textDocument/hover", c.at(uri, *position_of(text, needle, offset)))
    return result["contents"]["value"] if result else ""


# ---- diagnostics ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.stem for p in UI.glob("*.arch")))
def test_diagnostics_are_those_of_check(client, name):
    """Each golden error case: the same errors as `archdsl check`, at the same places, with
    the same codes and messages; notes and help are in the message."""
    path = UI / f"{name}.arch"
    expected = check_json(path)
    uri, got = opened(client, path)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert len(got) == len(expected), (got, expected)
    for d, e in zip(got, expected):
        assert d["code"] == e["code"] and d["source"] == "archdsl"
        first = d["message"].split("\n")[0]
        if e.get("file") == f"{name}.arch":
            assert first == e["message"]
        else:  # found in a file it uses: said where, on the `use` line
            assert first == f"{(UI / e['file']).relative_to(ROOT)}:{e['line']}:" \
                            f"{e['column']}: {e['message']}"
        if e.get("file") == f"{name}.arch":
            assert d["range"]["start"] == {"line": e["line"] - 1,
                                           "character": e["column"] - 1}, (d, e)
            assert d["range"]["end"] == {"line": e["end"]["line"] - 1,
                                         "character": e["end"]["column"] - 1}, (d, e)
        if e.get("help") and e["code"] != "E0206":  # E0206's name folders, relative to
            # the folder each runs in
            assert "help: " + e["help"] in d["message"].replace("tests/ui/", "")


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.arch")), ids=lambda p: p.name)
def test_zoo_specs_open_without_diagnostics(client, path):
    uri, got = opened(client, path)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert got == []


def test_edits_update_the_diagnostics(client):
    path = SPECS / "lenet.arch"
    text = path.read_text()
    uri, got = opened(client, path)
    assert got == []
    line, char = position_of(text, "FC-84 act")
    client.edit(uri, line, char + len("FC-84 "), char + len("FC-84 act"), "atc")
    [d] = client.diagnostics(uri, 2)
    assert d["code"] == "E0201" and "unknown layer or block `atc`" in d["message"]
    assert d["range"]["start"] == {"line": line, "character": char + 6}
    assert "\nhelp: `archdsl layers` lists the layer kinds" in d["message"]
    client.edit(uri, line, char + 6, char + 9, "act")
    assert client.diagnostics(uri, 3) == []
    client.edit(uri, line, 0, 0, "  (")  # does not parse: a syntax error, at once
    [d] = client.diagnostics(uri, 4)
    assert d["code"].startswith("E01")
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_a_used_file_changed_on_disk_is_read_again(client, tmp_path):
    """The server asks to be told of .arch files changed on disk; a used file that changes
    (not open in the editor) re-checks the open files that use it."""
    registrations = [r for m in client.server_requests if m["method"] == "client/registerCapability"
                     for r in m["params"]["registrations"]]
    assert [r["registerOptions"]["watchers"][0]["globPattern"] for r in registrations
            if r["method"] == "workspace/didChangeWatchedFiles"] == ["**/*.arch"]
    blocks, net = tmp_path / "blocks.arch", tmp_path / "net.arch"
    blocks.write_text("block unit(c):\n    conv(c, 3, pad=same) relu\n")
    net.write_text('use "blocks.arch"\n\nnetwork tiny:\n    input 3x8x8\n    unit(4) gap FC-2\n')
    uri, got = opened(client, net)
    assert got == []
    blocks.write_text("block unit(c):\n    conv(c, 3, pad=same) rleu\n")
    client.notify("workspace/didChangeWatchedFiles", {"changes": [
        {"uri": blocks.resolve().as_uri(), "type": 2}]})
    [d] = client.diagnostics(uri)
    assert d["code"] == "E0201" and "`rleu`" in d["message"]
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_typing_is_debounced(client):
    """Twenty keystrokes sent at once: the file is checked when they stop, for the last text
    (not twenty times), and the diagnostics are those of the last version."""
    path = SPECS / "efficientnet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    line, char = position_of(text, "network efficientnet_b0")
    for i in range(20):  # `#xxx...` typed at the start of the line, one key at a time
        client.edit(uri, line, i, i, "#" if i == 0 else "x")
    last = client.versions[uri]
    published = []
    while True:
        message = client.notifications.get(timeout=30)
        if message.get("method") == "textDocument/publishDiagnostics" and \
                message["params"]["uri"] == uri:
            published.append(message["params"]["version"])
            if message["params"]["version"] == last:
                break
    assert len(published) <= 3, published  # coalesced
    assert message["params"]["diagnostics"] == []  # the line is now a comment
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_a_used_file_changing_updates_the_files_that_use_it(client, tmp_path):
    blocks = tmp_path / "blocks.arch"
    net = tmp_path / "net.arch"
    blocks.write_text("block unit(c):\n    conv(c, 3, pad=same) relu\n")
    net.write_text('use "blocks.arch"\n\nnetwork tiny:\n    input 3x8x8\n    unit(4) gap FC-2\n')
    net_uri, got = opened(client, net)
    assert got == []
    blocks_uri, got = opened(client, blocks)
    assert got == []
    client.edit(blocks_uri, 1, 4, 8, "cnov")  # unsaved: the buffer, not the disk, counts
    client.diagnostics(blocks_uri, 2)
    [d] = client.diagnostics(net_uri)
    assert d["code"] == "E0201" and "blocks.arch:2:5" in d["message"]
    assert d["range"]["start"]["line"] == 0  # shown on the `use` line
    assert d["relatedInformation"][0]["location"]["uri"] == blocks.resolve().as_uri()
    client.edit(blocks_uri, 1, 4, 8, "conv")
    client.diagnostics(blocks_uri, 3)
    assert client.diagnostics(net_uri) == []
    # hover in the used file: the shapes of the network that uses it are not shown there
    # (that network is not this file's), but the block's signature is
    text = client.texts[blocks_uri]
    assert "block unit(c)" in hover(client, blocks_uri, text, "unit(c)")
    # go to definition across files
    [location] = client.request("textDocument/definition",
                                client.at(net_uri, *position_of(net.read_text(), "unit(4)")))
    assert location["uri"] == blocks.resolve().as_uri()
    assert location["range"]["start"] == {"line": 0, "character": 6}
    [location] = client.request("textDocument/definition",  # the `use` path: the file
                                client.at(net_uri, *position_of(net.read_text(), "blocks.arch")))
    assert location["uri"] == blocks.resolve().as_uri()
    other = tmp_path / "other.arch"  # references of a `use` path: the open files using it
    other.write_text('use "blocks.arch"\n')
    other_uri, _ = opened(client, other)
    refs = client.request("textDocument/references", {
        **client.at(net_uri, *position_of(net.read_text(), "blocks.arch")),
        "context": {"includeDeclaration": True}})
    assert sorted(r["uri"] for r in refs) == sorted([net_uri, other_uri])
    for uri in (net_uri, blocks_uri, other_uri):
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


# ---- hovers and inlay hints ----------------------------------------------------------------

def test_hover_on_a_label_shows_its_shape_in_each_network(client):
    path = SPECS / "resnet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    shown = hover(client, uri, text, "conv3_x: stage(unit, 128")
    assert "label `conv3_x`" in shown
    rows = {r.split("|")[1].strip(): r for r in shown.splitlines() if r.startswith("| resnet")}
    assert "**512x28x28**" in rows["resnet50"] and "256x56x56" in rows["resnet50"]
    assert "**128x28x28**" in rows["resnet18"]
    # figures: the parameters of ResNet-50's conv3_x, counted by archdsl's own summary
    from archdsl import zoo_network

    net = zoo_network("resnet50")
    expected = sum(n["params"].total for name, n in net.graph.layers() if name.startswith(
        "conv3_x."))
    assert f"| {expected:,} |" in rows["resnet50"]


def test_hover_on_a_layer_shows_its_signature_doc_and_shapes(client):
    path = SPECS / "lenet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    shown = hover(client, uri, text, "conv(16, 5")
    assert "conv(out, kernel, stride=1" in shown and "Convolution" in shown
    assert "| lenet5 | 6x14x14 | **16x10x10** | 2,416 |" in shown
    assert "| lenet5_cifar10 | 6x14x14 | **16x10x10** | 2,416 |" in shown
    shown = hover(client, uri, text, "act=act)  ", 0)  # a layer's parameter
    assert "`act`" in shown
    shown = hover(client, uri, text, "lenet5(classes", 0)  # the network: its figures
    assert "| lenet5 | 1x32x32 | 10 | 61,706 |" in shown
    hints = client.request("textDocument/inlayHint", {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 30, "character": 0}}})
    labels = {h["position"]["line"]: h["label"] for h in hints}
    lines = text.split("\n")
    assert labels[lines.index(next(l for l in lines if "conv(6, 5" in l))] == "→ 6x14x14"
    assert labels[lines.index(next(l for l in lines if "FC-{classes}" in l))] == "→ 10"


def test_hover_on_a_block_call_inside_a_block(client):
    path = SPECS / "resnet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    shown = hover(client, uri, text, "conv_bn(c, 3, s) relu")
    assert "block conv_bn(c, k, s=1, groups=1, d=1)" in shown
    assert "| resnet18 | 64x56x56 | **128x28x28** |" in shown  # the stride-2 call of conv3_x
    shown = hover(client, uri, text, "block basic(c, s=1)", 12)  # a parameter
    assert "parameter `c` of `basic`" in shown
    assert "- resnet18: `64`, `128`, `256`, `512`" in shown  # the values of its calls


def decoded_tokens(client, uri: str, text: str) -> dict:
    """(line, text) -> (type, modifiers) of the semantic tokens of a document."""
    legend = client.capabilities["semanticTokensProvider"]["legend"]
    data = client.request("textDocument/semanticTokens/full",
                          {"textDocument": {"uri": uri}})["data"]
    lines, found, line, start = text.split("\n"), {}, 0, 0
    for i in range(0, len(data), 5):
        delta, offset, length, kind, bits = data[i:i + 5]
        line, start = line + delta, (offset if delta else start + offset)
        found[(line, lines[line][start:start + length])] = (
            legend["tokenTypes"][kind],
            {m for j, m in enumerate(legend["tokenModifiers"]) if bits >> j & 1})
    return found


def test_semantic_tokens(client):
    """Highlighting for editors that do not read TextMate grammars (Neovim, Helix)."""
    path = SPECS / "lenet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    found = decoded_tokens(client, uri, text)
    line = text.split("\n").index(next(l for l in text.split("\n") if l.startswith("network")))
    assert found[(line, "network")] == ("keyword", set())
    assert found[(line, "lenet5")] == ("class", {"declaration"})
    assert found[(line, "classes")] == ("parameter", {"declaration"})
    assert found[(line, "10")] == ("number", set())
    assert found[(line + 1, "{channels}x{size}x{size}")] == ("number", set())
    assert found[(line + 2, "conv")] == ("function", {"defaultLibrary"})
    assert found[(line + 2, "act")] == ("parameter", set())
    assert found[(line + 2, "# C1: 6@28x28    S2: 6@14x14")] == ("comment", set())
    assert found[(line + 4, "FC-120")] == ("function", {"defaultLibrary"})
    client.change(uri, text.replace("FC-84 act", "FC-84 act("))  # does not parse: by spelling
    found = decoded_tokens(client, uri, client.texts[uri])
    assert found[(line + 2, "conv")] == ("function", {"defaultLibrary"})
    assert found[(line, "network")] == ("keyword", set())
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


# ---- navigation ----------------------------------------------------------------------------

def test_definitions_and_references(client):
    path = SPECS / "resnet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)

    def definition(needle, offset=1):
        [location] = client.request("textDocument/definition",
                                    client.at(uri, *position_of(text, needle, offset)))
        return location["range"]["start"]["line"], location["range"]["start"]["character"]

    assert definition("stage(unit, 64") == position_of(text, "stage(unit, c, n, s)")
    assert definition("resnet(bottleneck, [3, 4, 6") == position_of(text, "resnet(unit, layers")
    assert definition("bottleneck, [3, 4, 6", 1) == position_of(text, "bottleneck(c, s=1, d=1)")
    assert definition("conv_bn(c, 3, s) relu", 0) == position_of(text, "conv_bn(c, k, s=1")
    refs = client.request("textDocument/references", {
        **client.at(uri, *position_of(text, "block basic", 7)),
        "context": {"includeDeclaration": True}})
    # in this file, and in the closed files of the workspace that use it (fpn.arch)
    by_file = {}
    for ref in refs:
        by_file.setdefault(Path(to_path(ref["uri"])).name, []).append(ref)
    assert set(by_file) == {"resnet.arch", "fpn.arch"}
    for name, found in by_file.items():
        code = "\n".join(line.split("#")[0] for line in (SPECS / name).read_text().split("\n"))
        assert len(found) == len(re.findall(r"\bbasic\b", code)), name
    # a label and `from`
    spec = "network n:\n    input 3x8x8\n    t1: conv(4, 3)\n    relu\n    from t1 gap\n"
    # a file that is not on disk (a buffer never saved): its text is all there is
    uri2, got = opened(client, ROOT / "tests" / "ui" / "_lsp_label_test.arch", spec)
    [location] = client.request("textDocument/definition",
                                client.at(uri2, *position_of(spec, "from t1", 5)))
    assert location["range"]["start"] == {"line": 2, "character": 4}
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri2}})


def test_symbols(client):
    path = SPECS / "resnet.arch"
    uri, _ = opened(client, path)
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = {s["name"]: s for s in symbols}
    assert {"basic", "bottleneck", "stage", "resnet", "resnet50"} <= set(names)
    assert names["resnet"]["kind"] == 5 and names["basic"]["kind"] == 12  # Class, Function
    assert {c["name"] for c in names["resnet"]["children"]} >= {"conv1", "conv3_x", "conv5_x"}
    found = client.request("workspace/symbol", {"query": "effnetb7"})
    assert any(s["name"] == "efficientnet_b7" for s in found)
    found = client.request("workspace/symbol", {"query": "yolov8"})
    assert any(s["location"]["uri"].endswith("specs/yolo.arch") for s in found)


# ---- writing -------------------------------------------------------------------------------

def test_completion(client):
    path = ROOT / "tests" / "ui" / "_lsp_completion_test.arch"
    uri, _ = opened(client, path, "block unit(c, s=1):\n    conv(c, 3)\n")
    client.change(uri, "block unit(c, s=1):\n    conv(c, 3, \n")  # being typed: no parse
    items = client.request("textDocument/completion", client.at(uri, 1, 15))["items"]
    labels = {i["label"]: i for i in items}
    assert {"stride=", "pad=", "groups=", "act="} <= set(labels)
    assert "out=" not in labels or True  # positional ones given already may still be named
    assert labels["stride="]["detail"].startswith("default 1")
    assert "c" in labels and "s" in labels  # the block's parameters, as values
    client.change(uri, "block unit(c, s=1):\n    conv(c, 3) \n")
    items = client.request("textDocument/completion", client.at(uri, 1, 15))["items"]
    labels = {i["label"] for i in items}
    assert {"relu", "conv", "bn", "maxpool", "unit"} <= labels  # steps: layers and blocks
    client.change(uri, "network n:\n    input 3x8x8\n    t1: relu\n    from \n")
    items = client.request("textDocument/completion", client.at(uri, 3, 9))["items"]
    assert [i["label"] for i in items] == ["input", "t1"]
    # an argument that names a tensor offers the tensors too (upsample's `like=`)
    client.change(uri, "network n:\n    input 3x8x8\n    t1: maxpool\n    upsample(like=\n")
    items = client.request("textDocument/completion", client.at(uri, 3, 18))["items"]
    assert [i["label"] for i in items] == ["input", "t1"]
    # an argument of a few words offers them, quoted (upsample's `mode=`)
    client.change(uri, "network n:\n    input 3x8x8\n    upsample(2, mode=\n")
    items = client.request("textDocument/completion", client.at(uri, 2, 21))["items"]
    assert [i["label"] for i in items] == ['"nearest"', '"linear"', '"bilinear"',
                                           '"trilinear"']
    client.change(uri, 'use "res')
    items = client.request("textDocument/completion", client.at(uri, 0, 8))["items"]
    assert items == [] or all(i["label"].endswith(".arch") for i in items)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_signature_help(client):
    uri, _ = opened(client, ROOT / "tests" / "ui" / "_lsp_signature_test.arch",
                    "block unit(c, s=1):\n    conv(c, 3)\n")
    client.change(uri, "block unit(c, s=1):\n    conv(c, 3, stride=2, \n")
    help_ = client.request("textDocument/signatureHelp", client.at(uri, 1, 25))
    [signature] = help_["signatures"]
    assert signature["label"].startswith("conv(out, kernel, stride=1")
    assert help_["activeParameter"] == 3  # the fourth argument: pad
    client.change(uri, "block unit(c, s=1):\n    unit(3, s=\n")
    help_ = client.request("textDocument/signatureHelp", client.at(uri, 1, 14))
    assert help_["signatures"][0]["label"] == "unit(c, s=1)"
    assert help_["activeParameter"] == 1
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def test_formatting(client):
    messy = "network n:\n  input 3x8x8\n  conv( 4,3 )   relu\n\n\n\n  gap FC-2\n"
    uri, _ = opened(client, ROOT / "tests" / "ui" / "_lsp_format_test.arch", messy)
    [edit] = client.request("textDocument/formatting", {
        "textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}})
    assert edit["newText"] == format_text(messy)
    client.change(uri, format_text(messy))
    assert client.request("textDocument/formatting", {
        "textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}}) == []
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def to_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def apply(text: str, edits: list[dict]) -> str:
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"],
                                          e["range"]["start"]["character"]), reverse=True):
        s, t = e["range"]["start"], e["range"]["end"]
        assert s["line"] == t["line"]
        line = lines[s["line"]]
        lines[s["line"]] = line[:s["character"]] + e["newText"] + line[t["character"]:]
    return "\n".join(lines)


@pytest.mark.parametrize("needle,offset,new,count", [
    ("block basic(c", 7, "basic_block", None),  # a block: its definition and every call
    ("block basic(c, s=1)", 12, "width", None),  # a parameter: inside its block only
    ("conv3_x: stage(unit, 128", 1, "stage3", 1),  # a label
    ("network resnet(unit", 9, "resnet_v15", None),  # a network: and its variants' bases
])
def test_rename(client, needle, offset, new, count, tmp_path):
    """The edits, applied to a copy of the zoo, give the same networks with the same counts:
    in the file, and in the closed files that use what was renamed (fpn.arch and
    segmentation.arch use resnet.arch)."""
    import shutil

    import archdsl

    path = SPECS / "resnet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    position = position_of(text, needle, offset)
    prepared = client.request("textDocument/prepareRename", client.at(uri, *position))
    assert prepared["start"]["line"] == position[0]
    result = client.request("textDocument/rename", {**client.at(uri, *position),
                                                    "newName": new})
    edits = result["changes"].pop(uri)
    if count is not None:
        assert len(edits) == count
    old_name = client.texts[uri].split("\n")[position[0]][prepared["start"]["character"]:
                                                          prepared["end"]["character"]]
    copy = tmp_path / "specs"
    shutil.copytree(SPECS, copy)
    changed = {"resnet.arch": edits}
    for where, their_edits in result["changes"].items():
        changed[Path(to_path(where)).name] = their_edits
    for name, file_edits in changed.items():
        before_text = (SPECS / name).read_text()
        renamed = apply(before_text, file_edits)
        assert renamed.count(new) == len(file_edits) + before_text.count(new), name
        (copy / name).write_text(renamed)
        before, after = archdsl.load(SPECS / name), archdsl.load(copy / name)
        assert [new if n == old_name else n for n in before.networks] == after.networks
        for network in before.concrete_networks()[:2]:
            renamed_network = new if network == old_name else network
            assert before.network(network).params_total == \
                after.network(renamed_network).params_total, (name, network)
    if old_name == "basic":  # used by fpn.arch
        assert "fpn.arch" in changed


def test_renames_that_cannot_be_done(client):
    path = SPECS / "resnet.arch"
    text = path.read_text()
    uri, _ = opened(client, path)
    at = client.at(uri, *position_of(text, "relu", 1))
    assert client.request("textDocument/prepareRename", at) is None  # a layer kind
    with pytest.raises(ServerError, match="cannot be renamed"):
        client.request("textDocument/rename", {**at, "newName": "relu2"})
    at = client.at(uri, *position_of(text, "block basic", 7))
    with pytest.raises(ServerError, match="already defined"):
        client.request("textDocument/rename", {**at, "newName": "bottleneck"})
    with pytest.raises(ServerError, match="not a name"):
        client.request("textDocument/rename", {**at, "newName": "2x"})
    with pytest.raises(ServerError, match="is a layer kind"):
        client.request("textDocument/rename", {**at, "newName": "conv"})
    # a parameter renamed from a call's named argument: checked against the block's names
    at = client.at(uri, *position_of(text, "conv_bn(c, 3, s, d=d)", 17))
    with pytest.raises(ServerError, match="already defined"):
        client.request("textDocument/rename", {**at, "newName": "groups"})


# ---- robustness ----------------------------------------------------------------------------

def test_the_server_never_imports_torch(tmp_path):
    """A `torch` that cannot be imported, first on the path: the server does all its work
    without noticing."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
                                      "raise ImportError('the language server imported torch')\n")
    c = Client(env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    try:
        path = SPECS / "resnet.arch"
        text = path.read_text()
        uri, got = opened(c, path)
        assert got == []
        assert "512x28x28" in hover(c, uri, text, "conv3_x: stage")
        c.request("textDocument/inlayHint", {"textDocument": {"uri": uri}, "range": {
            "start": {"line": 0, "character": 0}, "end": {"line": 200, "character": 0}}})
        c.request("textDocument/completion", c.at(uri, 10, 4))
        c.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                              "options": {"tabSize": 4, "insertSpaces": True}})
    finally:
        assert c.close() == 0
    assert not (tmp_path / "imported").exists()


def test_a_buffer_over_the_size_limit_gets_e0507_and_no_more_work(client):
    """An editor may open anything as archdsl: a buffer over 64 KiB is refused as a spec file
    is, and highlighting and formatting do nothing with it."""
    from archdsl.limits import MAX_FILE_BYTES

    text = "network n:\n    input 3x8x8\n" + "    relu\n" * (MAX_FILE_BYTES // 9 + 1)
    uri, [d] = opened(client, ROOT / "tests" / "ui" / "_lsp_large_test.arch", text)
    assert d["code"] == "E0507"
    document = {"textDocument": {"uri": uri}}
    assert client.request("textDocument/semanticTokens/full", document)["data"] == []
    assert client.request("textDocument/formatting", {**document, "options": {
        "tabSize": 4, "insertSpaces": True}}) is None
    assert client.request("textDocument/hover", client.at(uri, 2, 5)) is None
    client.notify("textDocument/didClose", document)


def test_the_server_stops_when_the_client_goes(tmp_path):
    c = Client()
    c.process.stdin.close()  # the editor crashed
    assert c.process.wait(timeout=20) == 0


def test_no_internal_errors_were_logged(client):
    """Run last in this module: every request above was answered without an internal error."""
    assert logged_errors(client) == []


def test_closed_files_are_read_within_the_size_limit(tmp_path):
    """References and renames read the closed workspace files that mention a name, as every
    spec is read: one over the size limit is left out, not read whole."""
    from archdsl.limits import MAX_FILE_BYTES
    from archdsl.lsp.server import ArchServer

    server = ArchServer()
    small, large = tmp_path / "small.arch", tmp_path / "large.arch"
    small.write_text("block unit:\n    relu\n")
    large.write_text("block unit:\n    relu\n" + "#" * MAX_FILE_BYTES + "\n")
    assert server.closed_index(small, "unit") is not None
    assert server.closed_index(large, "unit") is None
    assert server.closed_index(small, "absent") is not None  # cached: one parse per change
