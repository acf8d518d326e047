"""kvsim's Hydra sweeper: Hydra's basic sweeper plus a job list, a lock, progress and a table."""
