#!/usr/bin/env bash
# A sweep of `raftwal torture` (simulated power-loss file system) over a range of seeds:
#   scripts/torture-sweep.sh FIRST LAST CYCLES [torture flags...]
# e.g. scripts/torture-sweep.sh 1 300 200 --lazy-open --max-batch 8 --max-payload 1500
# Runs each seed, prints one line per failing seed (with the command that reproduces it) and
# a total; exits 1 if any seed failed. Build first: cargo build --release.
set -u
first=$1; last=$2; cycles=$3; shift 3
bin="${RAFTWAL_BIN:-$(dirname "$0")/../target/release/raftwal}"
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
failed=0
start=$(date +%s)
for seed in $(seq "$first" "$last"); do
    if ! out=$("$bin" torture --seed "$seed" --cycles "$cycles" --quiet "$@" 2>&1); then
        failed=$((failed + 1))
        echo "seed $seed FAILED: $(echo "$out" | grep -m1 VIOLATION)"
        echo "$out" | grep -A1 "reproduce with" | tail -1
    fi
done
echo "seeds $first..$last, $cycles cycles each, flags [$*]: $failed failing seeds, $(( $(date +%s) - start )) s"
[ "$failed" -eq 0 ]
