#!/usr/bin/env bash
# The GPU figures of docs/krnn.md in one call on a lent GPU machine whose python3 already has torch:
#   bash bench/gpu_figures.sh WHEELS PROVIDER OUT
# WHEELS holds the cp312 wheels of pyqlib and what its import needs beyond that image (see docs/krnn.md),
# PROVIDER a Qlib folder (the CSI300 2015-2019 snapshot), OUT receives the logs.
set -uo pipefail
wheels=$1 provider=$2 out=$3
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$wheels"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
# the image's own pandas serves when the carried pandas 2 does not import against its numpy
python3 -c "import pandas" 2>/dev/null || rm -rf /tmp/site/pandas /tmp/site/pandas-*
python3 -c "import torch, pandas, numpy; print(torch.__version__, pandas.__version__, numpy.__version__)"
amp=--amp
# bf16 autocast must run through the fused cuDNN GRU before the long bench relies on it
python3 - <<'PY' || amp=
import torch
from krnn_core.model.krnn import KRNN, KRNNConfig
model = KRNN(KRNNConfig()).cuda()
with torch.autocast("cuda", dtype=torch.bfloat16):
    model(torch.randn(64, 360, device="cuda")).float().sum().backward()
print("bf16 autocast: ok")
PY
timeout "${BENCH_TIMEOUT:-500}" python3 bench/bench_train.py --provider "$provider" --epochs 3 --full --metric ic \
    --seeds 0 1 2 $amp --threads 16 >"$out/bench_train.log" 2>&1
echo "bench_train exit $?"
grep -v -E "^ours epoch|INFO|Warning|warn" "$out/bench_train.log" | tail -20
