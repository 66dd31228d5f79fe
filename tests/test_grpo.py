"""`qvr grpo` end to end on CPU: vLLM samples, the sandboxed verifier pool rewards, two Ray Train
ranks with DeepSpeed ZeRO-2 learn; a run that fails after a checkpoint restarts (FailureConfig),
and one stopped for good resumes with `--resume` to the very parameters of an uninterrupted run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import EXAMPLES, ROOT, child_env

pytestmark = pytest.mark.slow
METRICS = {"reward_mean", "reward_std", "pass_rate", "format_reward", "zero_variance_groups", "response_length",
           "kl", "entropy", "clip_fraction", "logprob_gap", "loss", "learner_tokens_per_s", "time/step_s",
           "time/generate_s", "time/verify_s", "time/learn_s", "time/publish_s", "policy_lag"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from actors.rollout.testing import save_tiny_policy
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks

    return save_tiny_policy(tmp_path_factory.mktemp("policy") / "tiny", load_tasks(TaskSourceConfig(source=str(EXAMPLES))))


def grpo(root: Path, policy: Path, *args: str) -> tuple[int, dict, str]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "qvr"), "grpo", "--config", "configs/grpo-smoke.yaml",
         f"run.root={root}", f"rollout.model={policy}", "--json", *args],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1]), result.stdout + result.stderr[-4000:]


def weights(run_summary: dict) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    folder = Path(run_summary["policy"])
    return {name: tensor for file in sorted(folder.glob("*.safetensors")) for name, tensor in load_file(file).items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, policy):
    code, summary, output = grpo(tmp_path_factory.mktemp("runs"), policy)
    assert code == 0, output
    return summary


def test_grpo_smoke_learns_from_sandbox_rewards(uninterrupted, policy):
    summary = uninterrupted
    assert summary["steps"] == 3 and summary["steps_done"] == 3 and summary["error"] is None
    run = Path(summary["run_dir"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert METRICS <= set(row), METRICS - set(row)
        assert 0.0 <= row["pass_rate"] <= 1.0 and row["policy_lag"] == 0
        assert row["logprob_gap"] < 1e-3  # vLLM and the learner score the same tokens alike
    assert any(row["samples_trained"] > 0 and row["reward_std"] > 0 for row in rows)
    assert (run / "rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(run.glob("events.out.tfevents.*"))
    assert set(summary["seconds_per_step"]) >= {"step_s", "generate_s", "verify_s", "learn_s", "publish_s"}
    # The policy moved: the final weights differ from the starting ones, name by name.
    from safetensors.torch import load_file

    start = {name: tensor for file in policy.glob("*.safetensors") for name, tensor in load_file(file).items()}
    final = weights(summary)
    assert set(start) <= set(final) | {"lm_head.weight"}
    assert any(not torch.equal(start[name], final[name]) for name in start if name in final)


def test_failed_ranks_restart_and_a_stopped_run_resumes_to_the_same_parameters(tmp_path, policy, uninterrupted):
    # Rank 1 fails before step 1 (Ray Train restarts from the step-1 checkpoint) and again before
    # step 2, with no restart left: the run stops after its step-2 checkpoint.
    code, stopped, output = grpo(tmp_path, policy, "learner.fail_at_steps=[1, 2]", "checkpoint.max_failures=1")
    assert code == 1 and "injected failure" in stopped["error"], output
    run = Path(stopped["run_dir"])
    from actors.learner.checkpoint import TRAINER_STATE, latest

    assert json.loads((latest(run) / TRAINER_STATE).read_text())["step"] == 2
    code, resumed, output = grpo(tmp_path, policy, "--resume", str(run))
    assert code == 0, output
    assert resumed["run_dir"] == str(run) and resumed["steps_done"] == 3
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1, 2]
    reference, final = weights(uninterrupted), weights(resumed)
    assert set(reference) == set(final)
    for name, tensor in reference.items():
        assert torch.equal(tensor, final[name]), name
    assert [row["reward_mean"] for row in rows] == uninterrupted["reward_mean"]
