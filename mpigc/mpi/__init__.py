"""The MPI runtime of mpigc: launch, master, worker, mailbox, protocol, sequential.

The only subpackage that touches mpi4py. Submodules are not imported here,
so ``import mpigc.mpi.protocol`` does not pull in the whole runtime.
"""
