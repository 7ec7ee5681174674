#!/usr/bin/env bash
# The Shapes-64 training run on the GPU machine (see ../shared/device/README.md): builds the addon
# against the machine's PyTorch, trains the default recipe on cuda (the same settings as the CPU run),
# exports the model and measures its text-to-image quality there. One device call, carrying .gpu and dist:
#   source .gpu/bootstrap.sh && bash scripts/device-train-shapes.sh
# Results land in $OUT: build and training logs, run.json (times per phase), log.jsonl, the exported
# model (fp16, ~14 MB) and its quality JSON.
set -uo pipefail
out=${OUT:-out}
mkdir -p "$out"
budget=${TRAIN_BUDGET_S:-450}
node --version || { echo "node not found: source .gpu/bootstrap.sh first"; exit 1; }
t0=$(date +%s)
node scripts/build-native.mjs > "$out/build.log" 2>&1 || { grep -E -B2 -A3 "error" "$out/build.log" | head -60; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
node -e "import('./dist/src/engine/index.js').then(E => { console.log(JSON.stringify(E.buildInfo())); if (!E.cuda.isAvailable()) process.exit(3); })" \
  || { echo "CUDA is not available to the addon"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
run=/tmp/shapes-run
t1=$(date +%s)
timeout -s INT "$budget" node dist/src/cli/main.js train-shapes "$run" --device cuda --checkpoint-every 1000 > "$out/train.log" 2>&1
echo "train exit $? after $(( $(date +%s) - t1 )) s"
tail -n 12 "$out/train.log"
cp "$run/run.json" "$run/log.jsonl" "$out/" 2>/dev/null
node dist/src/cli/main.js train-shapes "$run" --export-only --export "$out/shapes-64-gpu" 2>&1 | tail -3
timeout 120 node dist/bench/shapes-t2i.js --model "$out/shapes-64-gpu" --device cuda --json "$out/t2i-gpu.json" 2>&1 | tail -12
echo "total $(( $(date +%s) - t0 )) s"
