#!/usr/bin/env bash
# One GPU session's checks for section 7 (exercise 7.2's Triton kernel above all), in one log:
#   (a) pytest exercises/section7 graders/section7 --impl solutions   (GPU tests included)
#   (b) benchmarks/bench_triton_attention.py                           (the issue's 12 cases)
# Sized for an H200 in under 8 minutes (compiling and autotuning included):
# each step has its own timeout so the log always comes back.
#
#   bash benchmarks/gpu_check.sh [LOG]        # LOG defaults to $OUT/gpu_check.log or ./gpu_check.log
#
# Python: $PYTHON, else .venv/bin/python if present, else python3. It needs torch with CUDA,
# triton, pytest, hypothesis, numpy, threadpoolctl, jinja2, rich, regex. llmkit need not be
# installed: src/ goes on PYTHONPATH and the pytest plugin is loaded with -p when no
# installed entry point provides it.
set -u -o pipefail
cd "$(dirname "$0")/.."
LOG=${1:-${OUT:-.}/gpu_check.log}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
PLUGIN=()
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(not any(e.value == 'llmkit.plugin' for e in m.entry_points(group='pytest11')))"; then
  PLUGIN=(-p llmkit.plugin)
fi

{
  echo "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: not available"
  "$PY" -c "import sys, torch, triton; print('python', sys.version.split()[0], '| torch', torch.__version__, '| triton', triton.__version__, '| cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"

  echo; echo "## (a) pytest exercises/section7 graders/section7 --impl solutions"
  start=$SECONDS
  timeout 300 "$PY" -m pytest exercises/section7 graders/section7 --impl solutions -q -rs "${PLUGIN[@]}" \
    --durations=10 -p no:cacheprovider
  echo "pytest exit status $? after $((SECONDS - start)) s"

  echo; echo "## (b) python benchmarks/bench_triton_attention.py"
  start=$SECONDS
  timeout 170 "$PY" benchmarks/bench_triton_attention.py
  echo "benchmark exit status $? after $((SECONDS - start)) s"
} 2>&1 | tee "$LOG"
