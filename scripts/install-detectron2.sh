#!/usr/bin/env bash
# Install Detectron2 on a machine that reaches only the package registries.
#
# Official route (machines with internet access to GitHub):
#   pip install 'git+https://github.com/facebookresearch/detectron2.git'
#
# Route used here: the PyPI wheel `sal-detectron2==0.7.2`, whose Python code is upstream
# detectron2 at commit a59f056 (2024-04-17). It is tagged cp310; it is pure Python for what we
# use (its bundled CUDA extension never loads, and nothing here needs it), so it is fetched as a
# 3.10 wheel, checked against its sha256, renamed to a py3 tag and installed.
set -euo pipefail
constraints="${1:-constraints.txt}"
PIP="${PIP:-python -m pip}"
want_sha=491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561

if $PIP show detectron2 >/dev/null 2>&1 || $PIP show sal-detectron2 >/dev/null 2>&1; then
  echo "detectron2 already installed"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$PIP download --quiet --no-deps --python-version 3.10 --only-binary=:all: -d "$tmp" sal-detectron2==0.7.2
whl="$tmp/sal_detectron2-0.7.2-cp310-none-any.whl"
got=$(sha256sum "$whl" | cut -d' ' -f1)
if [ "$got" != "$want_sha" ]; then
  echo "sal-detectron2 wheel sha256 mismatch: got $got, expected $want_sha" >&2
  exit 1
fi
cp "$whl" "$tmp/sal_detectron2-0.7.2-py3-none-any.whl"
$PIP install --quiet -c "$constraints" "$tmp/sal_detectron2-0.7.2-py3-none-any.whl"
echo "detectron2 installed from sal-detectron2==0.7.2 (sha256 verified)"
