#!/usr/bin/env bash
# Final shared-parameter hash of fixed-step multi-worker runs (round: steps, no time budgets), for
# checking that a refactor leaves training bit-for-bit unchanged: run before and after, compare.
# Usage: tools/fixed-step-hashes.sh [path/to/tributary]   (default .build/release/tributary)
set -euo pipefail
bin=${1:-.build/release/tributary}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/run.yaml" <<YAML
model: {vocabSize: 32, contextLength: 32, layers: 2, heads: 2, channels: 32}
batchSize: 4
sequenceLength: 32
steps: 40
optimizer: {learningRate: 0.01, warmupSteps: 5}
data: {markovVocabulary: 32, trainTokens: 60000, validationTokens: 4096}
evaluation: {interval: 20, batches: 3}
checkpoint: {interval: 20, keep: 2}
YAML
run() {
    local name=$1; shift
    "$bin" local --config "$dir/run.yaml" --out "$dir/$name" --speeds 1 --link unlimited --json "$@" >/dev/null 2>"$dir/$name.err" \
        || { echo "$name failed:"; cat "$dir/$name.err"; exit 1; }
    python3 - "$dir/$name/metrics.jsonl" "$name" <<'PY'
import json, sys
reports = [json.loads(l) for l in open(sys.argv[1])]
last = max(r["round"] for r in reports)
hashes = sorted({r["parameterHash"] for r in reports if r["round"] == last})
val = [r.get("validationLoss") for r in reports if r["round"] == last][0]
print(f"{sys.argv[2]:<22} round {last:>3}  hash {' '.join(hashes)}  validation {val:.6f}")
PY
}
run ddp-fp32 --workers 2 --strategy ddp --codec fp32 --round steps
run ddp-int8 --workers 3 --strategy ddp --codec int8 --round steps
run diloco-int8 --workers 3 --strategy diloco --codec int8 --inner-steps 10 --round steps
run diloco-int4-overlap --workers 3 --strategy diloco --codec int4 --inner-steps 10 --round steps --overlap
run diloco-topk --workers 2 --strategy diloco --codec topk --inner-steps 10 --round steps
