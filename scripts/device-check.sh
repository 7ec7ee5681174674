#!/usr/bin/env bash
# The GPU check, for a session lent the device machine (see ../shared/device/README.md). Here, once:
#   bash ../shared/device/prepare.sh && npm run build
# then one device call, carrying .gpu and dist:
#   source .gpu/bootstrap.sh && bash scripts/device-check.sh
# It builds the addon against the machine's PyTorch, runs the engine and loading tests with tensors on
# cuda, and the benchmarks on cuda in fp32 and bf16. Logs and JSON results land in $OUT (or ./out).
set -uo pipefail
out=${OUT:-out}
mkdir -p "$out"
node --version || { echo "node not found: source .gpu/bootstrap.sh first"; exit 1; }
node scripts/build-native.mjs --bench 2>&1 | tee "$out/build.log" || exit 1
node -e "import('./dist/src/engine/index.js').then(E => { console.log(JSON.stringify(E.buildInfo())); if (!E.cuda.isAvailable()) process.exit(3); })" \
  || { echo "CUDA is not available to the addon"; exit 1; }
export IMAGIC_TEST_DEVICE=cuda
node --expose-gc --test --test-reporter=spec dist/tests/engine/device.test.js dist/tests/engine/errors.test.js dist/tests/io/load.test.js 2>&1 | tee "$out/tests.log"
node dist/bench/engine.js --device cuda --json "$out/engine-cuda.json" 2>&1 | tee "$out/bench-engine.log"
node dist/bench/unet.js --device cuda --dtype bfloat16 --json "$out/unet-cuda.json" 2>&1 | tee "$out/bench-unet.log"
node dist/bench/imagic.js --device cuda --json "$out/imagic-cuda.json" 2>&1 | tee "$out/bench-imagic.log"
