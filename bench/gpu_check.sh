#!/usr/bin/env bash
# One GPU sitting, as a script: the machine's facts and a probe of the training route, the GPU tests, the benchmark.
#
#   bash bench/gpu_check.sh OUTDIR                          # on the GPU machine (make gpu-check calls it)
#   TINYNET_CUPY_STANDIN=1 bash bench/gpu_check.sh OUTDIR   # the rehearsal, on the CuPy stand-in, without a GPU
#
# Written for the GPU machine as it is: python3 with CuPy, PyTorch, NumPy, Numba, pytest and matplotlib, no
# network, maybe no make. It installs nothing and runs from this checkout. The data comes from $TINYNET_DATA
# (the four Fashion-MNIST .gz files, 30 MB, carried along), else .data/ in the checkout, else the usual places.
# It writes 6 files into OUTDIR: probe.json (machine facts, GEMM kernel, capture), pytest.txt, results.json,
# results.md, speed.png (the benchmark) and stages.txt (each stage's seconds and exit status).
# Budget: under 8 minutes on an H100 (the stage limits add up to 7.5). Kernel-launch counting is not here: it
# takes minutes on the stand-in (python -m bench.launches, on any machine).
# Then, back on the development machine: python -m bench.gpu_report OUTDIR
set -uo pipefail
OUT=${1:?usage: bash bench/gpu_check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
PY=${PY:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ -z "${TINYNET_DATA:-}" ] && [ -f .data/train-images-idx3-ubyte.gz ]; then export TINYNET_DATA=$PWD/.data; fi
: > "$OUT/stages.txt"

# stage NAME LIMIT_S COMMAND...: run it under a time limit; append "NAME seconds rc" to stages.txt
stage() {
    local name=$1 limit=$2 t0 ms rc
    shift 2
    t0=$(date +%s%N)
    timeout "$limit" "$@"
    rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf '%-7s %4d.%d s  rc=%d%s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$rc" \
        "$([ "$rc" = 124 ] && echo "  (stopped at its $limit s limit)")" | tee -a "$OUT/stages.txt"
}

# the rehearsal: fewer images (the stand-in runs the CUDA source on the host), and the GPU tests' stand-in twins
if [ "${TINYNET_CUPY_STANDIN:-0}" = 1 ]; then
    PROBE=(--batch 16 --repeats 3) SIZE=(--images 384 --warmup 3 --eval-images 256)
    TESTS=(-m "not gpu" tests/test_cupy_backend.py tests/test_cuda_graph.py)
else
    PROBE=() SIZE=(--images 60000 --warmup 20 --eval-images 10000) TESTS=(-m gpu)
fi
stage probe 60 "$PY" -m bench.gpu_probe "$OUT/probe.json" "${PROBE[@]}"
export PYTEST_LOG=$OUT/pytest.txt
stage pytest 120 bash -c 'set -o pipefail; "$0" -m pytest -q -p no:cacheprovider "$@" 2>&1 | tee "$PYTEST_LOG"' \
    "$PY" "${TESTS[@]}"
stage bench 270 "$PY" -m bench.train_epoch --models cnn_dropout02,deep_bn_cnn --backends torch-cuda,cupy,cupy-eager,torch-cuda \
    --batch-size 128,512 --skip deep_bn_cnn:512 "${SIZE[@]}" --out "$OUT"
echo "wrote $(ls "$OUT" | tr '\n' ' ')"
