"""The language server (`archdsl lsp`): archdsl's analysis where a spec's author is looking.

    index.py      what each name in a file is: a definition, a parameter, a label, a layer
                  kind (go to definition, references, rename, symbols); and what each network
                  depends on (what an edit can affect)
    analysis.py   one version of one file, checked: diagnostics, and the tensors each step
                  made in every network that runs it (hovers, inlay hints); networks an edit
                  cannot affect are not elaborated again
    editing.py    what the text around the cursor asks for while it does not parse yet
                  (completion, signature help)
    highlight.py  semantic tokens: highlighting for editors without the TextMate grammar
    server.py     the Language Server Protocol over stdio, on pygls

Nothing here imports torch: a keystroke is answered by the same analysis as `archdsl check`.
Decisions and editor set-up: docs/editors.md.
"""
