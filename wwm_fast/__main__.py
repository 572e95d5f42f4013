"""``python -m wwm_fast``: the ``wwm-fast`` command line (wwm_fast/cli.py); nothing else."""

import sys

from .cli import main

sys.exit(main())
