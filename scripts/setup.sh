#!/usr/bin/env bash
# Sets up everything archdsl needs on a fresh machine, and nothing twice:
#   - Graphviz's `dot` (for diagrams), through apt-get when it is missing;
#   - a virtual environment in .venv with PyTorch, archdsl (editable) and its training and
#     test dependencies;
#   - where node is installed, the editor package's node modules (editors/vscode: its
#     language client, and the TextMate engine tests/test_grammar.py runs the grammar with).
# Run it again at any time: it skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        echo "setup: installing Graphviz (apt-get install graphviz)"
        if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq graphviz >/dev/null; }; then
            echo "setup: warning: could not install Graphviz; diagrams can still be written as .dot" >&2
        fi
    elif command -v brew >/dev/null 2>&1; then
        brew install graphviz
    else
        echo "setup: warning: install Graphviz (https://graphviz.org/download/) to render diagrams" >&2
    fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi

stamp=.venv/.archdsl-setup-done
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    echo "setup: installing PyTorch and archdsl into .venv (a minute or two the first time)"
    # a download cut short resumes (the package index's connection sometimes drops mid-file),
    # and a failed install is tried once more before set-up gives up
    install() {
        .venv/bin/python -m pip install -q --retries 10 --resume-retries 20 "$@" ||
            { echo "setup: pip install failed; trying once more" >&2;
              .venv/bin/python -m pip install -q --retries 10 --resume-retries 20 "$@"; }
    }
    .venv/bin/python -m pip install -q --upgrade pip
    install "torch==2.14.1" "torchvision==0.29.1"
    install -e ".[test]"
    touch "$stamp"
fi

if command -v npm >/dev/null 2>&1 && [ ! -d editors/vscode/node_modules/vscode-textmate ]; then
    echo "setup: installing the editor package's node modules (npm ci in editors/vscode)"
    if ! (cd editors/vscode && npm ci --no-audit --no-fund --silent); then
        echo "setup: warning: npm ci failed; tests/test_grammar.py will be skipped" >&2
    fi
fi
