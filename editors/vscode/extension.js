// The archdsl extension: highlighting comes from syntaxes/archdsl.tmLanguage.json; everything
// else (errors while you type, shapes on hover and at the end of each line, go to definition,
// completion, formatting, rename) from archdsl's language server, `archdsl lsp`, started here.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("archdsl")
    .get("command", ["archdsl", "lsp"]);
  client = new LanguageClient(
    "archdsl",
    "archdsl",
    { command, args },
    { documentSelector: [{ language: "archdsl" }] }
  );
  client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `archdsl: could not start \`${[command, ...args].join(" ")}\` (${error.message}). ` +
        "Install archdsl with its language server (pip install 'archdsl[lsp]'), or set " +
        "archdsl.command to the archdsl of your virtual environment."
    );
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
