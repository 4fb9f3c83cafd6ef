"""Stage 4, search: choosing the protection (and algorithm knobs) under a reliability target.

algorithm (per-layer precision, clipping and pruning knobs; retraining), optimize (the
cross-layer Optuna optimizer: targets, evaluator, search space, storage, loop, Pareto plot),
compare (protection schemes side by side).
"""
