#!/usr/bin/env bash
# Regenerates figures/ (README): demo-biased vs demo-balanced on the hint_conflict probe, all
# five instruments, the five conditions of the ablation study. About 5 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${LIMIT:-30}
for model in demo-biased demo-balanced; do
  python cli.py attribute --model "$model" --probe hint_conflict --limit "$LIMIT" \
    --conditions complete,text_white,text_black,text_noise,image_only \
    --methods attention,ig,shapley,knockout,logit_lens --save-maps --ig-steps 8 \
    --out "runs/$model.h5" --overwrite --no-progress
done
python cli.py figures runs/demo-biased.h5 runs/demo-balanced.h5 --out figures
python cli.py estimate runs/demo-biased.h5 --condition complete > figures/estimate-demo-biased.txt
python cli.py estimate runs/demo-balanced.h5 --condition complete > figures/estimate-demo-balanced.txt
python cli.py consistency runs/demo-biased.h5 > figures/consistency-demo-biased.md
python cli.py consistency runs/demo-balanced.h5 > figures/consistency-demo-balanced.md
