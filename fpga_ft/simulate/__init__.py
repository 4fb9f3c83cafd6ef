"""Stage 2, simulate: the bit-exact C simulation with fault hooks, and campaigns on it.

csim (build and drive the csim shared library), campaign (fault-injection campaigns:
chunks, workers, checkpoints, confidence intervals, sweeps).
"""
