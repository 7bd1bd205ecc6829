#!/usr/bin/env bash
# Issue 18's GPU checks as one short script, for a CUDA machine (run from the repository root,
# with the project's environment active).  Nothing else in memgen needs a GPU.
#
#   bash benchmarks/gpu_check.sh [OUT]        # writes OUT/ (default gpu-check/)
#
# 1. the card; 2. the kernels' fp16 / bf16 parity tests (pytest -m gpu); 3. bench_kernels.py
# (every op at T = 4,096 ... 1,048,576 as memory allows, ending in the targets' PASS / FAIL
# lines); 4. the learned hybrid's 2,097,152-token stress evaluation on the GPU, to set beside the
# CPU run in benchmarks/RESULTS.md ("Stress", 400.9 s wall): the target is at least 10x faster.
# Budget: about 10 minutes on an H100-class card; STRESS_EPISODES=10 shortens step 4.
set -euo pipefail
out=${1:-gpu-check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/card.txt"
python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" \
    | tee -a "$out/card.txt"
python -m pytest -q tests/kernels -m gpu 2>&1 | tee "$out/gpu-tests.txt"
python benchmarks/bench_kernels.py --json "$out/kernels.json" --plot "$out/kernels.png" 2>&1 | tee "$out/kernels.txt"
python benchmarks/bench_stress.py --model memslot_ref:device=cuda,threads=1 --episodes "${STRESS_EPISODES:-50}" \
    --json "$out/stress.json" 2>&1 | tee "$out/stress.txt"
