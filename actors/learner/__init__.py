"""The learner: a Ray Train + DeepSpeed train loop that runs a whole RL run on each rank.

``algorithms/`` holds the algorithms (a class each, their contract in ``algorithms/base.py``, chosen
by their config's name; GRPO's advantage estimators and policy losses are registries of their own);
``policy`` loads the model and scores tokens; ``experience`` is what the ranks train on; ``producer``
samples and verifies (through actors/rollout/stream.py), ``scoring`` turns a step's rollouts into the
ranks' batches (``samples`` are its units); ``sums`` are the metrics' named additive sums; ``train_loop`` is the per-rank loop;
``checkpoint`` saves and restores it.
"""
