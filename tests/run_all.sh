#!/usr/bin/env bash
# hybridlat's whole test suite: notebooks and library in sync, notebook tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

before=$(git status --porcelain; git diff)
nbdev_clean
nbdev_export
after=$(git status --porcelain; git diff)
if [ "$before" != "$after" ]; then
  echo "FAIL: nbdev_clean / nbdev_export changed files (notebooks not clean, or hybridlat/ out of sync):"
  git status --porcelain
  exit 1
fi
echo "nbdev_clean and nbdev_export left the tree unchanged"

OMP_NUM_THREADS=1 nbdev_test --n_workers 2 --timing

set +e
# two worker processes (pytest-xdist), one torch thread each: the suite is CPU-bound and single-threaded
OMP_NUM_THREADS=1 python -m pytest tests -p no:cacheprovider -rs -n 2 --durations=15
code=$?
set -e
if [ $code -eq 5 ]; then echo "FAIL: pytest collected no tests"; exit 1; fi
exit $code
