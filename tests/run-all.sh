#!/usr/bin/env bash
# The project's test command: the serial suite, then every MPI-marked test at
# several world sizes (including odd ones) under mpiexec. Each MPI run has
# MPIEXEC_TIMEOUT and an outer timeout, so a deadlock fails fast instead of
# hanging. pytest's "no tests collected" (exit 5) counts as success.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
PY=${PYTHON:-python}
MPIEXEC=${MPIEXEC:-mpiexec}
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-600}
SIZES=${MPI_SIZES:-3 5 9 17}

check() {  # run a command; treat pytest's exit 5 (no tests) as success
    "$@"
    local rc=$?
    if [ "$rc" -eq 5 ]; then rc=0; fi
    if [ "$rc" -ne 0 ]; then echo "FAILED ($rc): $*" >&2; exit "$rc"; fi
}

echo "== serial suite"
check timeout 1200 "$PY" -m pytest -q "$@"
for n in $SIZES; do
    echo "== MPI suite on $n ranks"
    check timeout 900 "$MPIEXEC" -n "$n" "$PY" -m mpi4py -m pytest --with-mpi -m mpi -q -x -p no:cacheprovider "$@"
done
echo "== all tests passed"
