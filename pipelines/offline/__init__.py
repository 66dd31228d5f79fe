"""Offline training jobs (``qvr sft``, ``qvr dpo``, ``qvr orpo``): one recipe, one data path.

``data``: reading, validating and tokenizing rows with Ray Data; ``job``: the shared config and
recipe (Ray Train + DeepSpeed learner over the dataset, held-out scores before and after, plots);
``smoke``: the tiny model and template-made data the CPU smoke presets start from.
"""
