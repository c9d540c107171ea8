#!/bin/bash
# The demo measurement of issue 11: fp32 on CPU; calibration 2,000 SST-2 train sentences (seed 0),
# evaluation SST-2 dev. Each step is one CLI command; every evaluation is cached, so the final
# all-strategies command reuses the earlier ones.
cd "$(dirname "$0")/.."
mkdir -p "${OUT:-/tmp/evidence-run}"
export BHPVAS_CACHE_DIR=${BHPVAS_CACHE_DIR:-/tmp/cache-evidence}
PY=${PYTHON:-python}
T="/usr/bin/time -f %e,%MkB"
$T $PY -m pruning_core analyze --precision fp32 --json --no-progress --out ${OUT:-/tmp/evidence-run}/bundle > ${OUT:-/tmp/evidence-run}/analyze.json 2> ${OUT:-/tmp/evidence-run}/analyze.err
echo "analyze done $(date -u) $(tail -1 ${OUT:-/tmp/evidence-run}/analyze.err)" >> ${OUT:-/tmp/evidence-run}/log
for part in "importance,bhpvas" "fisher,loo" "random" "dsp" "michel"; do
  name=${part//,/-}
  $T $PY -m pruning_core curves --precision fp32 --json --no-progress --strategies $part --out ${OUT:-/tmp/evidence-run}/curves-$name.json > ${OUT:-/tmp/evidence-run}/curves-$name.stdout.json 2> ${OUT:-/tmp/evidence-run}/curves-$name.err
  echo "curves $part done $(date -u) $(tail -1 ${OUT:-/tmp/evidence-run}/curves-$name.err)" >> ${OUT:-/tmp/evidence-run}/log
done
$T $PY -m pruning_core curves --precision fp32 --json --no-progress --strategies importance,fisher,loo,michel,dsp,random,bhpvas --out ${OUT:-/tmp/evidence-run}/curves-all.json > ${OUT:-/tmp/evidence-run}/curves-all.stdout.json 2> ${OUT:-/tmp/evidence-run}/curves-all.err
echo "curves all done $(date -u) $(tail -1 ${OUT:-/tmp/evidence-run}/curves-all.err)" >> ${OUT:-/tmp/evidence-run}/log
