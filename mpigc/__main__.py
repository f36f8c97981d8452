"""``python -m mpigc``: the command line."""
import sys

from mpigc.cli import main

sys.exit(main())
