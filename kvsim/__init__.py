"""kvsim: a discrete-event simulator of KV-cache tiering and metadata lookup for LLM serving."""

__version__ = "0.1.0"
