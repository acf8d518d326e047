"""Calibration: measure a testbed and write a calibration file (``conf/calibration/NAME.yaml``).

- ``python -m kvsim.calibrate redis``: a real Redis server's round trip and per-command
  service times (:mod:`kvsim.calibrate.redis_bench`, over :mod:`kvsim.calibrate.resp`).
- ``python -m kvsim.calibrate shim``: the native microbenchmark shim in ``shim/`` (host
  DRAM latency, memcpy, TCP, RDMA READ/WRITE/CAS, CUDA copies) (:mod:`kvsim.calibrate.shim`).
- ``python -m kvsim.calibrate refresh NAME``: re-render a file after the default changes.

Every file is the default file with the measured keys replaced and marked
(:mod:`kvsim.calibrate.calfile`); ``python -m kvsim calibration=NAME`` selects it.
"""

from kvsim.calibrate.calfile import CalibrationError, Measured, Source, render, write

__all__ = ["CalibrationError", "Measured", "Source", "render", "write"]
