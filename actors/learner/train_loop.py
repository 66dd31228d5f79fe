"""The per-rank train loop that Ray Train runs: one call runs the whole run, online or offline.

Each rank: load the policy (and its reference), wrap it in DeepSpeed (ZeRO stage from config,
reusing the process group Ray Train set up: gloo on CPU, NCCL on GPU), restore the latest
checkpoint if Ray Train hands one over, then for every step: take this rank's share of the
batch (online: from the ExperienceProducer; offline: from the dataset shard, see
``actors.learner.offline``), set the scheduled learning rate, accumulate gradients over its
micro-batches, take one optimizer step, and online (rank 0, after gathering ZeRO-3 shards)
publish the new weights to the rollout workers. Offline runs score their held-out rows before
the first and after the last step. Every ``checkpoint_every`` steps all ranks report a checkpoint to Ray Train.
The loss and its metrics are the configured algorithm's (actors/learner/algorithms/base.py: its
``batch_loss`` and ``report``, over named sums); this loop knows no algorithm.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field, SerializeAsAny

from actors.config import Config
from actors.learner import checkpoint
from actors.learner.algorithms import algorithm_for
from actors.learner.algorithms.base import AlgorithmConfig
from actors.learner.config import LearnerConfig, lr_factor
from actors.learner.experience import has_items
from actors.learner.offline import OfflinePlan
from actors.learner.policy import hf_state_dict, load_policy, reference_context, token_logprobs, training_dtype
from actors.learner.sums import Sums, all_reduce
from actors.rollout.config import RolloutConfig

if TYPE_CHECKING:
    from actors.learner.algorithms.base import Algorithm, OfflineAlgorithm

log = logging.getLogger("qvr.learner")


class LoopSpec(Config):
    """Everything a rank needs, handed over by the job through ``train_loop_config`` (as this object:
    the algorithm's config travels typed, never as a dict)."""

    learner: LearnerConfig
    """The learner's own settings."""

    algorithm: SerializeAsAny[AlgorithmConfig]
    """The algorithm's typed config (its name picks the algorithm: actors/learner/algorithms)."""

    model: str
    """Starting weights (already resolved: the learner's or the rollout's model)."""

    rollout: RolloutConfig | None = None
    """Online runs: the rollout workers' config (which transport carries the weights, in what
    chunks). None: offline, nothing is published."""

    offline: OfflinePlan | None = None
    """Offline runs: how the ranks walk the dataset shard ``train`` (and score ``heldout``)."""

    steps: int = Field(ge=1)
    """Optimizer steps in the whole run."""

    checkpoint_every: int = Field(1, ge=1)
    """Report a checkpoint every N steps (and after the last)."""

    resume_from: str | None = None
    """A checkpoint directory to start from when Ray Train hands over none (``--resume``; within a
    run, restarts use the latest checkpoint Ray Train reported)."""


def deepspeed_config(config: LearnerConfig, bf16: bool) -> dict[str, Any]:
    return {
        "train_micro_batch_size_per_gpu": config.micro_batch_size,
        "gradient_accumulation_steps": 1,  # accumulation boundaries are set by hand, per batch
        "gradient_clipping": config.max_grad_norm,
        "zero_optimization": {"stage": config.zero_stage},
        # torch_adam: DeepSpeed's fused CPU Adam would JIT-compile for minutes; torch's is enough.
        "optimizer": {"type": "AdamW", "params": {"lr": config.lr, "betas": list(config.adam_betas),
                                                  "weight_decay": config.weight_decay, "torch_adam": True}},
        "bf16": {"enabled": bf16},
        "steps_per_print": 1 << 30,
    }


def skip_inference_comm_build() -> None:
    """DeepSpeed's CPU backend JIT-compiles its shared-memory all-reduce (about a minute, under a
    lock file in ~/.cache that a killed build leaves behind, on which every later run then waits).
    Only DeepSpeed inference's tensor-parallel all-reduce uses it; training reduces through the
    process group. DeepSpeed keeps its op-compatibility table in one dict, so marking the op
    incompatible there makes the backend skip the build."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def train_loop(loop_config: dict[str, Any]) -> None:
    import deepspeed
    import numpy as np
    import ray
    import ray.train
    import torch
    import torch.distributed as dist

    logging.basicConfig(level=logging.INFO)
    spec = loop_config["spec"]
    if not isinstance(spec, LoopSpec):
        raise TypeError(f"train_loop_config['spec'] must be a LoopSpec, got {type(spec).__name__}")
    producer = loop_config.get("producer")  # online: the ExperienceProducer actor
    board = loop_config.get("board")  # offline: the MetricsBoard actor
    learner = spec.learner
    algorithm = algorithm_for(spec.algorithm)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(learner.seed + rank)
    np.random.seed(learner.seed + rank)
    random.seed(learner.seed + rank)

    model, reference = load_policy(learner, spec.model, with_reference=algorithm.needs_reference())
    skip_inference_comm_build()
    ds_config = deepspeed_config(learner, bf16=training_dtype(learner) == torch.bfloat16)
    engine, *_ = deepspeed.initialize(model=model, model_parameters=[p for p in model.parameters() if p.requires_grad],
                                      config=ds_config, dist_init_required=False)
    reference = prepare_reference(reference, learner, ds_config, engine.device)

    start_step = 0
    restored = ray.train.get_checkpoint()
    if restored is None and spec.resume_from:
        restored = ray.train.Checkpoint.from_directory(spec.resume_from)
    if restored is not None:
        with restored.as_directory() as directory:
            start_step = int(checkpoint.load(engine, directory, rank)["step"])
        log.info("rank %d restored step %d", rank, start_step)

    reporter = producer if producer is not None else board
    offline = heldout = None
    if spec.offline is not None:
        from actors.learner.offline import OfflineSource, read_rows

        pad_id = int(getattr(engine.module.config, "pad_token_id", None) or 0)
        offline = OfflineSource(read_rows(ray.train.get_dataset_shard("train")), spec.offline, algorithm, rank, world,
                                learner.micro_batch_size, pad_id)
        heldout = read_rows(ray.train.get_dataset_shard("heldout")) if spec.offline.heldout else None

        def evaluate(step: int) -> None:
            if not heldout:
                return
            values = evaluate_rows(engine, heldout, algorithm, reference, learner, rank, world, pad_id)
            if rank == 0:
                ray.get(reporter.finish_step.remote(step, {f"heldout/{k}": v for k, v in values.items()}))

        if start_step == 0:
            evaluate(0)

    transport = None
    if rank == 0 and producer is not None:
        from actors.rollout.transport import make_transport

        transport = make_transport(spec.rollout)

    def publish(version: int, changed: bool) -> float:
        """Every rank calls it (ZeRO-3 gathers are collective); rank 0 hands the weights (None:
        unchanged) to the producer, which loads them into the rollout workers. Returns the load time.
        Offline runs publish nothing."""
        if producer is None:
            return 0.0
        weights = _published_weights(engine, learner, rank) if changed else None
        if rank != 0:
            return 0.0
        return ray.get(producer.publish.remote(version, transport.send(weights) if weights is not None else None))

    if producer is not None:
        # A (re)start always publishes what it starts from: after a restart the rollout workers may
        # serve weights newer than the checkpoint.
        publish(start_step, changed=True)
        if rank == 0:
            ray.get(producer.start.remote(start_step, spec.steps))
    dist.barrier()  # no rank asks for a batch before the producer has (re)started

    previous_step_end = time.monotonic()
    for step in range(start_step, spec.steps):
        if step in learner.fail_at_steps and rank == world - 1 and ray.get(reporter.should_fail.remote(step)):
            raise RuntimeError(f"injected failure before step {step} (learner.fail_at_steps)")
        step_started = time.monotonic()
        batch = offline.get_batch(step) if offline is not None else ray.get(producer.get_batch.remote(step, rank))
        waited = time.monotonic() - step_started

        for group in engine.optimizer.param_groups:
            group["lr"] = learner.lr * lr_factor(learner.schedule, step, spec.steps)
        lr = float(engine.get_lr()[0])  # what the optimizer will use, read back
        learn_started = time.monotonic()
        totals, sums = learn(engine, batch, algorithm, reference, learner.lora.enabled, world)
        trained = has_items(batch.num_items)
        learn_s = time.monotonic() - learn_started
        all_reduce(totals, sums)
        grad_norm = engine.get_global_grad_norm() if trained else None

        publish_started = time.monotonic()
        version = step + 1
        loaded_s = publish(version, changed=trained)
        publish_s = time.monotonic() - publish_started

        metrics = {
            "step": step, "loss": totals["loss"], **algorithm.report(sums),
            "entropy": totals["entropy"] / max(totals["all_tokens"], 1.0),
            "grad_norm": float(grad_norm) if grad_norm is not None else 0.0, "lr": lr,
            "time/wait_batch_s": waited, "time/learn_s": learn_s, "time/publish_s": publish_s,
            "time/load_weights_s": loaded_s, "learner_tokens_per_s": totals["all_tokens"] / max(learn_s, 1e-9),
            "input_tokens": totals["input_tokens"], "tokens_per_s": totals["input_tokens"] / max(learn_s, 1e-9),
            "policy_version": version,
        }
        done = version == spec.steps
        report_checkpoint = done or version % spec.checkpoint_every == 0
        # Metrics go out before the checkpoint: a rank failing right after the report must not
        # lose them. A step's time runs from the previous step's end (its checkpoint included).
        if rank == 0:
            ray.get(reporter.finish_step.remote(step, {**metrics, "time/step_s": time.monotonic() - previous_step_end,
                                                       "clock/step_end": time.time()}))
        if done and offline is not None:
            evaluate(version)
        # Only steps with a checkpoint report to Ray Train: a report is a barrier of all ranks through
        # Ray Train's controller (about 2 s on CPU, measured), and the metrics travel by the reporter.
        # The step still ends with a barrier of the ranks (milliseconds): no rank asks the producer
        # for the next batch before rank 0 has published this step's weights and finished the step
        # (the producer would wait for weights queued behind that request).
        dist.barrier()
        if report_checkpoint:
            with tempfile.TemporaryDirectory(prefix="qvr-ckpt-") as directory:
                checkpoint.save(engine, directory, {"step": version, "policy_version": version}, rank)
                if done:
                    _save_hf(engine, learner, directory, rank, spec.model)
                ray.train.report({key: value for key, value in metrics.items() if not key.startswith("time/")},
                                 checkpoint=ray.train.Checkpoint.from_directory(directory))
        previous_step_end = time.monotonic()


def evaluate_rows(engine: Any, rows: list[dict[str, Any]], algorithm: OfflineAlgorithm, reference: Any,
                  learner: LearnerConfig, rank: int, world: int, pad_id: int) -> dict[str, float]:
    """The algorithm's loss and metrics on held-out rows, without gradients: every rank scores its
    share, the sums are all-reduced (every rank calls it: ZeRO-3 forwards are collective)."""
    import torch

    from actors.learner.offline import rank_batch

    engine.eval()
    batch = rank_batch(algorithm, rows, 0, rank, world, learner.micro_batch_size, pad_id)
    totals, sums = Sums(loss=0.0), Sums()
    with torch.no_grad():
        for micro in batch.micro_batches:
            micro = {key: value.to(engine.device) for key, value in micro.items()}
            logprobs, _ = token_logprobs(engine, micro)
            ref_logprobs = None
            if algorithm.needs_reference():
                with reference_context(engine.module, reference, learner.lora.enabled) as ref:
                    ref_logprobs, _ = token_logprobs(ref, micro)
            loss, micro_sums = algorithm.batch_loss(micro, logprobs, ref_logprobs, batch.num_items)
            totals.add({"loss": float(loss)})
            sums.add(micro_sums)
    all_reduce(totals, sums)
    return {"loss": totals["loss"], **algorithm.report(sums)}


def prepare_reference(reference: Any, learner: LearnerConfig, ds_config: dict[str, Any], device: Any) -> Any:
    """The frozen reference beside the policy: sharded like it under ZeRO-3 (a DeepSpeed engine
    without optimizer), else a plain copy on the rank's device. None stays None (LoRA, beta 0)."""
    if reference is None:
        return None
    if learner.zero_stage == 3:
        import deepspeed

        config = {key: value for key, value in ds_config.items() if key != "optimizer"}
        engine, *_ = deepspeed.initialize(model=reference, config=config, dist_init_required=False)
        engine.eval()
        return engine
    return reference.to(device)


def learn(engine: Any, batch: Any, algorithm: Algorithm, reference: Any, lora: bool, world: int) -> tuple[Sums, Sums]:
    """The algorithm's optimizer steps on this rank's share of a batch (one, or its
    ``updates_per_batch``): gradients accumulate over its micro-batches, DeepSpeed reduces them at
    the last one. Returns this rank's sums of the first step: the loop's (:data:`LOOP_SUMS`) and the
    algorithm's (all-reduced by the caller). A batch with nothing to learn from (GRPO: every group
    zero-variance) takes no step: Adam's moments would still move the weights."""
    import torch

    engine.train()
    totals, sums = Sums.fromkeys(LOOP_SUMS, 0.0), Sums()
    if not has_items(batch.num_items):
        return totals, sums
    needs_reference = algorithm.needs_reference()
    updates = algorithm.updates_per_batch()
    ref_cache: dict[int, Any] = {}
    for update in range(updates):
        for index, micro in enumerate(batch.micro_batches):
            micro = {key: value.to(engine.device) for key, value in micro.items()}
            engine.set_gradient_accumulation_boundary(index == len(batch.micro_batches) - 1)
            logprobs, entropy = token_logprobs(engine, micro, with_entropy=True)
            if update == 0 and updates > 1:
                batch.micro_batches[index]["logprobs_before_update"] = logprobs.detach().cpu()
            if needs_reference and index not in ref_cache:
                with torch.no_grad(), reference_context(engine.module, reference, lora) as ref:
                    ref_cache[index], _ = token_logprobs(ref, micro)
            loss, micro_sums = algorithm.batch_loss(micro, logprobs, ref_cache.get(index), batch.num_items)
            # DeepSpeed averages gradients over ranks; each rank's loss is already its share of the sum.
            engine.backward(loss * world, scale_wrt_gas=False)
            if update == 0:
                mask = micro["completion_mask"]
                totals.add({"loss": loss.detach().item(), "entropy": float((entropy * mask).sum()),
                            "all_tokens": float(mask.sum()), "input_tokens": float(micro["attention_mask"].sum())})
                sums.add(micro_sums)
        engine.step()
    return totals, sums


LOOP_SUMS = ("loss", "entropy", "all_tokens", "input_tokens")
"""The loop's own sums: the loss, entropy over the scored tokens, scored tokens, input tokens."""


def _published_weights(engine: Any, learner: LearnerConfig, rank: int) -> dict[str, Any] | None:
    """The full policy in Hugging Face names on rank 0 (None elsewhere); under ZeRO-3 every rank
    must call it, since gathering the shards is collective."""
    states = _rank0_states(engine, learner, rank, lambda module: hf_state_dict(module, learner.lora.enabled))
    return None if states is None else states[0]


def _rank0_states(engine: Any, learner: LearnerConfig, rank: int, *views: Any) -> list[dict[str, Any]] | None:
    """Each ``view(module)`` state dict, copied on rank 0 under one gather of the ZeRO-3 shards
    (collective: every rank calls it); None on the other ranks."""
    import deepspeed

    gather = (deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None)
              if learner.zero_stage == 3 else contextlib.nullcontext())
    with gather:
        if rank != 0:
            return None
        return [{name: tensor.detach().clone() for name, tensor in view(engine.module).items()} for view in views]


def _save_hf(engine: Any, learner: LearnerConfig, directory: str, rank: int, source: str | None = None) -> None:
    """The final policy as a plain Hugging Face folder (LoRA merged, the starting model's tokenizer
    beside it, so that it loads alone: ``qvr eval --model``, the next stage of a recipe) next to
    the checkpoint, and under LoRA the adapter alone (``lora.save_adapter``); written by rank 0
    (every rank calls it: ZeRO-3 gathers are collective)."""
    from peft import get_peft_model_state_dict
    from transformers import AutoTokenizer

    adapter_too = learner.lora.enabled and learner.lora.save_adapter
    views = [lambda module: hf_state_dict(module, learner.lora.enabled)]
    states = _rank0_states(engine, learner, rank, *views, *([get_peft_model_state_dict] if adapter_too else []))
    if states is None:
        return
    model = engine.module.get_base_model() if learner.lora.enabled else engine.module
    model.save_pretrained(os.path.join(directory, checkpoint.HF_MODEL), state_dict=states[0])
    if adapter_too:
        engine.module.save_pretrained(os.path.join(directory, checkpoint.HF_ADAPTER), state_dict=states[1])
    if source is not None:
        AutoTokenizer.from_pretrained(source).save_pretrained(os.path.join(directory, checkpoint.HF_MODEL))
