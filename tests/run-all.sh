#!/usr/bin/env bash
# The project's test command: the serial suite (spread over every core by
# pytest-xdist), then every MPI-marked test at several world sizes (including
# odd ones) under mpiexec. Each MPI run has MPIEXEC_TIMEOUT and an outer
# timeout, so a deadlock fails fast instead of hanging. pytest's "no tests
# collected" (exit 5) counts as success. docs/testing.md describes the suite.
#
# Knobs (environment): MPI_SIZES (world sizes, default "3 6 9 13": odd world
# sizes, and 5 and 12 workers, not powers of two; a test marked world_sizes runs
# only at the sizes it lists, MPIGC_ALL_WORLD_SIZES=1 runs it at every size),
# TEST_WORKERS (pytest-xdist workers of the serial suite, default "auto": one per
# core; 0 runs it in one process), RUN_SERIAL=0 (MPI suite only), MPIEXEC
# (launcher), MPIEXEC_FLAGS (extra launcher flags), PYTHON. Works with MPICH, Intel MPI and Open MPI; for Open MPI (found by
# `mpiexec --version`) it sets, unless already set, the variables that let the
# same `mpiexec -n N` line run on a small machine: oversubscription, running as
# root, and yielding idle ranks (see docs/cluster.md).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
PY=${PYTHON:-python}
MPIEXEC=${MPIEXEC:-mpiexec}
read -r -a MPIEXEC_FLAGS <<< "${MPIEXEC_FLAGS:-}"
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-600}
SIZES=${MPI_SIZES:-3 6 9 13}
# The MPI tests call mpigc in-process, so `mpigc run`'s own BLAS pinning does not apply:
# 17 ranks on 2 cores, each with an idle OpenBLAS pool spinning, distort every timing.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

if "$MPIEXEC" --version 2>&1 | grep -q -i -E "open mpi|openrte|prrte|prte"; then
    # More ranks than cores: PRRTE (Open MPI 5's launcher) refuses without this.
    export PRTE_MCA_rmaps_default_mapping_policy=${PRTE_MCA_rmaps_default_mapping_policy:-:oversubscribe}
    # Open MPI 4 (ORTE) spelling of the same.
    export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
    # Ranks blocked in MPI (barriers, finalize) give their core away instead of spinning.
    export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
    if [ "$(id -u)" = 0 ]; then  # containers and CI run as root; prterun refuses without both
        export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
        export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
    fi
    export PY_COLORS=${PY_COLORS:-0}  # ranks' output goes through a pty: no colour codes in logs
fi

check() {  # run a command; treat pytest's exit 5 (no tests) as success
    "$@"
    local rc=$?
    if [ "$rc" -eq 5 ]; then rc=0; fi
    if [ "$rc" -ne 0 ]; then echo "FAILED ($rc): $*" >&2; exit "$rc"; fi
}

if [ "${RUN_SERIAL:-1}" != 0 ]; then
    echo "== serial suite"
    start=$SECONDS
    # loadgroup: the tests that start their own mpiexec share one worker (helpers.MPIEXEC_GROUP), one at a time;
    # the MPI-marked tests are left to the runs below (-m, which a -m among "$@" overrides)
    check timeout 1200 "$PY" -m pytest -q -n "${TEST_WORKERS:-auto}" --dist loadgroup -m "not mpi" "$@"
    echo "== serial suite: $((SECONDS - start)) s"
fi
for n in $SIZES; do
    echo "== MPI suite on $n ranks"
    start=$SECONDS
    check timeout 900 "$MPIEXEC" "${MPIEXEC_FLAGS[@]}" -n "$n" "$PY" -m mpi4py -m pytest --with-mpi -m mpi -q -x \
        -p no:cacheprovider "$@"
    echo "== MPI suite on $n ranks: $((SECONDS - start)) s"
done
echo "== all tests passed"
