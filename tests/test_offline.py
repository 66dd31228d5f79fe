"""The offline learner and its jobs: which rows make each step, the lr schedule, data validation
(bad rows counted, bad files named, exit 2), and `qvr sft` end to end on Ray Train + DeepSpeed:
held-out loss before/after, and a run stopped mid-epoch that resumes to bit-identical parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from actors.learner.config import ScheduleConfig, lr_factor
from actors.learner.offline import OfflinePlan, OfflineSource, step_rows
from actors.rollout.testing import save_tiny_model
from tests.conftest import run_qvr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=1))


# ---- which rows make each step ----

def test_each_epoch_is_a_seeded_permutation_cut_into_global_batches():
    plan = OfflinePlan(rows=10, epochs=3, global_batch_size=4, seed=7)
    assert (plan.steps_per_epoch, plan.steps) == (3, 9)
    epochs = [[row for step in range(e * 3, e * 3 + 3) for row in step_rows(plan, step)] for e in range(3)]
    assert all(sorted(epoch) == list(range(10)) for epoch in epochs)  # every row once per epoch
    assert epochs[0] != epochs[1] != epochs[2]  # a fresh shuffle each epoch
    assert [len(step_rows(plan, s)) for s in range(3)] == [4, 4, 2]  # the last batch of an epoch is smaller
    assert step_rows(plan, 4) == step_rows(OfflinePlan(rows=10, epochs=3, global_batch_size=4, seed=7), 4)
    assert step_rows(plan, 4) != step_rows(plan.model_copy(update={"seed": 8}), 4)
    assert step_rows(plan.model_copy(update={"shuffle": False}), 1) == [4, 5, 6, 7]


def test_ranks_share_a_step_with_equal_micro_batch_counts_and_the_global_count():
    from actors.learner.algorithms.sft import Sft, SftConfig

    plan = OfflinePlan(rows=5, epochs=1, global_batch_size=5, shuffle=False)
    rows = [{"prompt_ids": [1, 2], "completion_ids": [3] * (i + 1), "row_id": i} for i in range(5)]
    batches = [OfflineSource(rows, plan, Sft(SftConfig()), rank, 2, 2, 0).get_batch(0) for rank in (0, 1)]
    assert [len(b.micro_batches) for b in batches] == [2, 2]  # rank 0: 3 rows, rank 1: 2 rows (+ nothing)
    assert [b.samples for b in batches] == [3, 2]
    assert all(b.num_items == 15.0 for b in batches)  # 1 + 2 + 3 + 4 + 5 target tokens, all ranks
    tokens = sum(float(m["completion_mask"].sum()) for b in batches for m in b.micro_batches)
    assert tokens == 15.0


@pytest.mark.parametrize("kind, expected", [
    ("constant", [0.5, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [0.5, 1.0, 2 / 3, 1 / 3, 0.0]),
    ("cosine", [0.5, 1.0, 0.75, 0.25, 0.0]),
])
def test_warmup_then_schedule(kind, expected):
    schedule = ScheduleConfig(kind=kind, warmup_steps=1)
    assert [lr_factor(schedule, step, 4) for step in range(5)] == pytest.approx(expected)


# ---- data validation ----

def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_bad_rows_are_counted_by_reason(tiny):
    from pipelines.offline.data import Tokenize

    sft = Tokenize(tiny, {"prompt": "prompt", "completion": "completion"}, "sft", "chat", 40)
    assert sft.row({"prompt": "qc = QuantumCircuit(2)", "completion": "qc.h(0)"})["problem"] == ""
    assert sft.row({"prompt": "", "completion": "x"})["problem"] == "empty_prompt"
    assert sft.row({"prompt": "x", "completion": None})["problem"] == "missing_completion"
    assert sft.row({"prompt": "qc.h(0) " * 40, "completion": "x"})["problem"] == "prompt_too_long"
    long = sft.row({"prompt": "p", "completion": "qc.cx(0, 1) " * 40})
    assert long["problem"] == "" and long["truncated"] and len(long["prompt_ids"]) + len(long["completion_ids"]) == 40
    pairs = Tokenize(tiny, {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}, "pairs", "plain", 64)
    row = pairs.row({"prompt": "Bell", "chosen": "qc.h(0)", "rejected": "qc.x(0)"})
    assert row["problem"] == "" and row["chosen_ids"][-1] == row["rejected_ids"][-1]  # both end with EOS
    assert pairs.row({"prompt": "Bell", "chosen": "qc.h(0)", "rejected": "  "})["problem"] == "empty_rejected"


def test_a_missing_field_or_no_usable_row_is_a_config_error_naming_file_and_field(tiny, tmp_path, capsys):
    from pipelines.cli import main

    no_field = write_jsonl(tmp_path / "no-field.jsonl", [{"prompt": "a", "answer": "b"}])
    assert main(["sft", f"model={tiny}", f"data.train={no_field}"]) == 2
    error = capsys.readouterr().err
    assert "no-field.jsonl has no field 'completion'" in error and "data.completion_field" in error
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"prompt": "a", "chosen": "", "rejected": "c"},
                                                   {"prompt": "a", "chosen": "b"}])
    assert main(["dpo", f"model={tiny}", f"data.train={empty}"]) == 2
    error = capsys.readouterr().err
    assert "empty.jsonl has no usable row" in error and "'chosen'" in error and "'rejected'" in error
    assert main(["orpo", f"model={tiny}", f"data.train={tmp_path / 'nothing.jsonl'}"]) == 2
    assert "nothing.jsonl: no such file" in capsys.readouterr().err


def test_a_missing_smoke_model_is_built_from_parquet_rows_too(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from pipelines.offline.job import bootstrap
    from pipelines.sft import Config

    rows = [{"prompt": "Prepare a zorblax state.", "reference_solution": "qc.zorblax(0)", "difficulty": 1}] * 3
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "tasks.parquet")
    config = Config.model_validate({"model": str(tmp_path / "model"), "bootstrap_smoke": {},
                                    "data": {"train": str(tmp_path / "tasks.parquet"),
                                             "completion_field": "reference_solution"}})
    bootstrap(config, "sft")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert len(tokenizer("zorblax", add_special_tokens=False)["input_ids"]) == 1  # it learnt the rows' words


def test_resume_from_a_folder_that_is_no_run_or_has_no_checkpoint_is_a_config_error(tiny, tmp_path, capsys):
    from pipelines.cli import main

    assert main(["sft", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "not a run directory (no config.yaml)" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("model: x\n")
    assert main(["dpo", "--resume", str(tmp_path)]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err


def test_a_dataset_whose_rows_all_drop_when_tokenized_exits_2_naming_file_and_reasons(tiny, tmp_path, capsys, ray_session):
    from pipelines.cli import main

    long = write_jsonl(tmp_path / "long.jsonl", [{"prompt": "qc.h(0) " * 200, "completion": "x"}] * 3)
    status = main(["sft", f"model={tiny}", f"data.train={long}", "data.max_length=32", "ray.num_cpus=2",
                   f"run.root={tmp_path / 'runs'}", "run.tensorboard=false"])
    assert status == 2
    error = capsys.readouterr().err
    assert "long.jsonl has no usable row" in error and "prompt_too_long: 3" in error


# ---- end to end ----


def offline_config(job: str, tmp_path: Path, train_seeds: int = 3, lr: float = 3e-3, **settings):
    from pipelines.jobs import job_module

    return job_module(job).Config.model_validate({
        "model": str(tmp_path / "model"), "run": {"root": str(tmp_path / "runs"), "tensorboard": False},
        "data": {"train": str(tmp_path / "train.jsonl"), "heldout": str(tmp_path / "heldout.jsonl"), "max_length": 384},
        "bootstrap_smoke": {"templates": 4, "train_seeds": train_seeds, "heldout_seeds": 1},
        "train": {"epochs": 2, "global_batch_size": 4, "seed": 3},
        "learner": {"workers": 2, "cpus_per_worker": 0.5, "lr": lr, "micro_batch_size": 1,
                    "schedule": {"kind": "cosine", "warmup_steps": 1}},
        "checkpoint": {"every": 2, "keep": 3, "max_failures": 0}, "plot": False, **settings})


def run_job(config, job: str = "sft"):
    from pipelines.jobs import job_module
    from pipelines.runs import Run

    module = job_module(job)
    run = Run(job, config, config.run, module.run_path(config))
    try:
        return run, module.run(config, run)
    finally:
        run.close()


def stopped_copy(run_path: Path, destination: Path, after_step: int) -> Path:
    """The run as if it had been killed after ``after_step``: its copy without later checkpoints."""
    import shutil

    from actors.learner.checkpoint import TRAINER_STATE

    stopped = destination / run_path.name
    shutil.copytree(run_path, stopped)
    for state in list(stopped.rglob(TRAINER_STATE)):
        if json.loads(state.read_text())["step"] > after_step:
            shutil.rmtree(state.parent)
    return stopped


def final_weights(summary: dict) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {name: tensor for file in sorted(Path(summary["policy"]).glob("*.safetensors"))
            for name, tensor in load_file(file).items()}


def test_texts_pack_into_full_length_sequences_with_nothing_lost_and_nothing_shared(tiny, tmp_path, ray_session):
    from transformers import AutoTokenizer

    from pipelines.offline.data import OfflineDataConfig, prepare

    texts = [f"qc = QuantumCircuit({n})\n" + "qc.h(0)\n" * n for n in range(1, 9)]
    source = write_jsonl(tmp_path / "corpus.jsonl", [{"text": text} for text in texts])
    config = OfflineDataConfig(train=source, heldout_fraction=0.25, max_length=16)
    train, heldout, report = prepare(config, "sft_text", tiny)
    assert report["packed"] == {"train_texts": 6, "heldout_texts": 2}
    for rows in (train, heldout):
        lengths = [len(row["prompt_ids"]) + len(row["completion_ids"]) for row in rows]
        assert lengths[:-1] == [16] * (len(lengths) - 1) and 2 <= lengths[-1] <= 16  # no padding but the last
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    streams = ["".join(tokenizer.decode(row["prompt_ids"] + row["completion_ids"]) for row in rows)
               for rows in (train, heldout)]
    pieces = [piece for piece in (streams[0] + streams[1]).split(tokenizer.eos_token) if piece]
    assert sorted(pieces) == sorted(texts)  # every text whole, each in exactly one of the two splits
    unpacked, _, _ = prepare(config.model_copy(update={"pack": False}), "sft_text", tiny)
    assert len(unpacked) == 6 and max(len(r["prompt_ids"]) + len(r["completion_ids"]) for r in unpacked) == 16


def test_a_teacher_writes_each_rows_explanation_and_the_proven_code_is_kept(tiny, tmp_path, ray_session):
    from pipelines.offline.teacher import TeacherConfig, write_explanations

    code = "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)"
    rows = [{"prompt": "Prepare a Bell state.", "completion": f"Here:\n```python\n{code}\n```", "task_id": "a"},
            {"prompt": "Prepare a GHZ state.", "completion": f"```python\n{code}\nqc.cx(1, 2)\n```", "task_id": "b"},
            {"prompt": "Say hello.", "completion": "no code at all (", "task_id": "c"}]
    source = write_jsonl(tmp_path / "bucket-a.jsonl", rows)
    teacher = TeacherConfig.model_validate({"rollout": {"engine": "transformers", "model": tiny, "num_cpus": 0.25},
                                            "sampling": {"max_tokens": 12, "temperature": 0.0}})
    counts = write_explanations(teacher, source, "prompt", "completion", tmp_path / "out.jsonl")
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert counts["rows"] == 3 and counts["no_code"] == 1 and counts["explained"] + counts["empty_explanation"] == 2
    assert counts["explained"] >= 1
    assert written[2] == rows[2]  # nothing to explain: kept as it was, and counted
    for row, original in zip(written[:2], rows[:2]):
        assert row["task_id"] == original["task_id"] and row["prompt"] == original["prompt"]
        if row["completion"] != original["completion"]:
            think, _, block = row["completion"].partition("</think>\n")
            assert think.startswith("<think>\n") and len(think.strip()) > len("<think>")
            assert block == "```python\n" + original["completion"].split("```python\n")[1].split("\n```")[0] + "\n```"


def test_offline_jobs_evaluate_only_their_start_and_end():
    from pipelines.config import ConfigError, resolve_config
    from pipelines.sft import Config

    with pytest.raises(ConfigError, match="eval.every"):
        resolve_config(Config, None, ["eval.every=2"])
    assert resolve_config(Config, None, []).eval.at_start


@pytest.mark.slow
def test_sft_learns_and_resumes_mid_epoch_to_identical_parameters(tmp_path, ray_session):
    config = offline_config("sft", tmp_path)
    run, whole = run_job(config)
    assert whole["steps"] == 6  # 12 rows / 4 per step x 2 epochs
    assert whole["heldout"]["after"]["loss"] < whole["heldout"]["before"]["loss"] - 0.5
    assert whole["tokens_per_s"] > 0 and whole["data"]["train"]["usable"] == 12
    lrs = [json.loads(line).get("lr") for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [round(lr, 8) for lr in lrs if lr is not None][:2] == [1.5e-3, 3e-3]  # warmup, then the peak

    # The same run as if it had stopped after step 4 (the middle of epoch 2): its copy without the
    # final checkpoint, continued with --resume.
    stopped = stopped_copy(run.path, tmp_path / "stopped", after_step=4)
    _, resumed = run_job(config.model_copy(update={"resume": str(stopped)}))
    assert resumed["steps"] == 2 and "before" not in resumed["heldout"]
    a, b = final_weights(whole), final_weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert resumed["heldout"]["after"] == whole["heldout"]["after"]


@pytest.mark.slow
def test_dpo_learns_and_resumes_mid_epoch_with_its_frozen_reference_to_identical_parameters(tmp_path, ray_session):
    config = offline_config("dpo", tmp_path, train_seeds=2, lr=1e-3,
                            checkpoint={"every": 1, "keep": 4, "max_failures": 0})
    run, whole = run_job(config, "dpo")
    assert whole["steps"] == 4 and whole["data"]["train"]["usable"] == 8  # 8 pairs / 4 per step x 2 epochs
    before, after = whole["heldout"]["before"], whole["heldout"]["after"]
    assert before["margin"] == 0.0 and after["margin"] > 0.0 and after["accuracy"] > before["accuracy"]
    # Stopped after step 3 (the middle of epoch 2), continued: the reference is rebuilt from the
    # starting weights, not from the checkpoint's policy, or the resumed step would differ.
    stopped = stopped_copy(run.path, tmp_path / "stopped", after_step=3)
    _, resumed = run_job(config.model_copy(update={"resume": str(stopped)}), "dpo")
    assert resumed["steps"] == 1
    a, b = final_weights(whole), final_weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert resumed["heldout"]["after"] == whole["heldout"]["after"]


@pytest.mark.slow
def test_bench_learner_json(tmp_path, ray_session):
    """`qvr bench learner` is SFT runs on synthetic rows (tested here, after the offline jobs): each
    step trains on exactly rows x tokens tokens (the synthetic rows are cut to length), and the
    figure is those tokens over the step's learn seconds, read from the SFT run's own metrics."""
    result = run_qvr("bench", "learner", 'learner.models=[{"name": "tiny", "layers": 1, "hidden_size": 64}]',
                     "learner.workers=[1]", "learner.rows=4", "learner.tokens=32", "learner.micro_batch_size=2",
                     "learner.steps=3", f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    figures = summary["models"]["tiny"]["1_workers"]
    assert figures["tokens_per_step"] == 4 * 32
    assert figures["tokens_per_s"] == pytest.approx(figures["tokens_per_step"] / figures["learn_s"])
    assert figures["overhead_s"] > 0 and figures["parameters"] > 0
