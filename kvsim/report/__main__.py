"""``python -m kvsim.report SWEEP_DIR``: gather a sweep into sweep.parquet / sweep.csv and its figures."""

import sys

from kvsim.report.sweep import main

if __name__ == "__main__":
    sys.exit(main())
