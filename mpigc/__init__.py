"""mpigc: an MPI benchmark suite for gradient coding under stragglers."""
__version__ = "0.1.0"
