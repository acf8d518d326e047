"""kvsim: a discrete-event simulator of KV-cache tiering and metadata lookup for LLM serving."""

from kvsim import accel as _accel

__version__ = "0.1.0"

# The compiled build of the hot modules, when one was made for these exact sources
# (python -m kvsim.accel build); otherwise nothing changes.
_accel.install()
