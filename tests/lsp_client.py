"""A Language Server Protocol client for tests and benchmarks: it starts `archdsl lsp` as a
subprocess and speaks JSON-RPC to it over stdio, as an editor does (Content-Length framed
messages; requests answered by id; notifications such as publishDiagnostics queued)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    """The server answered a request with an error."""

    def __init__(self, error: dict):
        super().__init__(error.get("message", str(error)))
        self.error = error


class Client:
    def __init__(self, root: Path = ROOT, env: dict | None = None, args=()):
        command = [sys.executable, "-m", "archdsl", "lsp", *args]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=root, env={**os.environ, **(env or {})})
        self.next_id = 0
        self.responses: dict[int, dict] = {}
        self.notifications: "queue.Queue[dict]" = queue.Queue()
        self.answered = threading.Condition()
        self.versions: dict[str, int] = {}
        self.server_requests: list[dict] = []
        self.texts: dict[str, str] = {}
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.capabilities = self.request("initialize", {
            "processId": os.getpid(), "rootUri": root.as_uri(),
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
            "capabilities": {"textDocument": {"hover": {"contentFormat": ["markdown"]},
                                              "inlayHint": {}},
                             "workspace": {"didChangeWatchedFiles": {
                                 "dynamicRegistration": True}}}})["capabilities"]
        self.notify("initialized", {})

    # ---- the wire --------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _read(self) -> None:
        out = self.process.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    with self.answered:
                        self.answered.notify_all()
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            message = json.loads(out.read(length))
            if "id" in message and "method" not in message:
                with self.answered:
                    self.responses[message["id"]] = message
                    self.answered.notify_all()
            elif "id" in message:  # a request from the server (client/registerCapability...)
                self.server_requests.append(message)
                try:
                    self._send({"id": message["id"], "result": None})
                except (OSError, ValueError):  # our side is closed already
                    pass
            else:
                self.notifications.put(message)

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)

    def request(self, method: str, params, timeout: float = 30):
        self.next_id += 1
        number = self.next_id
        self._send({"id": number, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self.answered:
            while number not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    state = "exited" if self.process.poll() is not None else "silent"
                    log = b"".join(self.stderr[-20:]).decode(errors="replace")
                    raise TimeoutError(f"no answer to {method} (server {state}): {log}")
                self.answered.wait(left)
        response = self.responses.pop(number)
        if "error" in response:
            raise ServerError(response["error"])
        return response.get("result")

    def notify(self, method: str, params) -> None:
        self._send({"method": method, "params": params})

    # ---- documents -------------------------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> str:
        uri = Path(path).resolve().as_uri()
        text = Path(path).read_text() if text is None else text
        self.versions[uri] = 1
        self.texts[uri] = text
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "archdsl", "version": 1, "text": text}})
        return uri

    def change(self, uri: str, text: str) -> None:
        """Replace the whole text (as one incremental change over the full range)."""
        self.versions[uri] += 1
        old = self.texts[uri]
        lines = old.split("\n")
        self.texts[uri] = text
        self.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": self.versions[uri]},
            "contentChanges": [{"range": {"start": {"line": 0, "character": 0},
                                          "end": {"line": len(lines) - 1,
                                                  "character": len(lines[-1])}},
                                "text": text}]})

    def edit(self, uri: str, line: int, start: int, end: int, new: str) -> None:
        """One incremental change on one line (0-based line, characters)."""
        self.versions[uri] += 1
        lines = self.texts[uri].split("\n")
        lines[line] = lines[line][:start] + new + lines[line][end:]
        self.texts[uri] = "\n".join(lines)
        self.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": self.versions[uri]},
            "contentChanges": [{"range": {"start": {"line": line, "character": start},
                                          "end": {"line": line, "character": end}},
                                "text": new}]})

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 30) -> list:
        """The next diagnostics published for `uri` (for `version`, when given)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no diagnostics for {uri}")
            try:
                message = self.notifications.get(timeout=left)
            except queue.Empty:
                continue
            if message.get("method") != "textDocument/publishDiagnostics":
                continue
            params = message["params"]
            if params["uri"] == uri and (version is None or params.get("version") == version):
                return params["diagnostics"]

    def at(self, uri: str, line: int, character: int) -> dict:
        return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
        except (OSError, TimeoutError, ServerError):
            pass
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def position_of(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """The 0-based (line, character) of `needle`'s first occurrence, plus `offset`."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)
