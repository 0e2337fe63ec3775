#!/usr/bin/env bash
# The GPU session's checks, in one run (a few minutes on an H100): the tests that need CUDA to mean
# something, torchrun on one GPU, then `python -m fastdiff bench gpu` writing its tables to $OUT
# (or assets/). Run from the repository root.
set -u
out="${OUT:-assets}"
mkdir -p "$out"
python -m pytest -q -p no:cacheprovider tests/test_train.py tests/test_lean_train.py tests/test_same_seed.py \
    tests/test_cuda_graph_fallback.py tests/test_distributed.py 2>&1 | tail -5 | tee "$out/gpu-tests.txt"
# More processes than GPUs: expect a one-line error, not a traceback.
timeout 120 torchrun --standalone --nproc_per_node=2 -m fastdiff train --data cifar10 --out /tmp/fastdiff-ddp \
    --epochs 1 2>&1 | grep -m2 "error:" | tee "$out/gpu-torchrun.txt"
timeout 420 python -m fastdiff bench gpu --assets "$out"
