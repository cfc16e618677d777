"""The training run: the loop, the feature cache, optimizers, schedules, checkpoints and specs."""
