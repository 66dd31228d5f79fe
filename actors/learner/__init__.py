"""The learner: a Ray Train + DeepSpeed train loop that runs a whole RL run on each rank.

``algorithms/`` holds the losses (one module each, chosen by name); ``policy`` loads the model
and scores tokens; ``experience`` is what the producer hands the ranks; ``producer`` samples,
verifies and scores; ``train_loop`` is the per-rank loop; ``checkpoint`` saves and restores it.
"""
