"""`qvr bench step`'s parts that need no run: TRL's settings mirror qvr's step, and a step's
figures and timeline are read from its metrics as written (the whole bench: tests/test_grpo.py)."""

import pytest

from pipelines.benches import trl_grpo
from pipelines.benches.step import figures_of, timeline_row


def work(**changes) -> trl_grpo.StepWork:
    fields = {"policy": "unused", "tasks": [], "steps": 8, "prompts_per_step": 32, "group_size": 8, "max_tokens": 200,
              "temperature": 1.0, "lr": 4e-4, "warmup_steps": 3, "beta": 0.01, "clip_low": 0.2, "clip_high": 0.28,
              "micro_batch_size": 16}
    return trl_grpo.StepWork(**{**fields, **changes})


@pytest.mark.parametrize(("prompts", "micro", "expected_micro"), [(32, 16, 16), (5, 16, 10), (3, 7, 6)])
def test_trl_learns_qvrs_step_in_one_generation_and_one_optimizer_step(tmp_path, prompts, micro, expected_micro):
    config = trl_grpo.grpo_config(work(prompts_per_step=prompts, micro_batch_size=micro), tmp_path)
    completions = prompts * 8
    assert config.per_device_train_batch_size == expected_micro
    # One generation of every prompt's group per optimizer step, learned in equal micro-batches.
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == completions
    assert config.steps_per_generation == config.gradient_accumulation_steps and config.num_iterations == 1
    assert config.num_generations == 8 and config.max_completion_length == 200 and config.max_steps == 8
    assert (config.beta, config.epsilon, config.epsilon_high) == (0.01, 0.2, 0.28)
    assert config.loss_type == "dapo" and config.scale_rewards == "group" and config.mask_truncated_completions
    assert (config.learning_rate, config.warmup_steps, config.lr_scheduler_type) == (4e-4, 3, "constant_with_warmup")
    assert config.temperature == 1.0 and config.top_p == 1.0 and not config.use_vllm


def step_row(end: float, step_s: float, sample_start: float, **seconds: float) -> dict[str, float]:
    return {"clock/step_end": end, "clock/sample_start": sample_start, "time/step_s": step_s,
            **{f"time/{name}_s": value for name, value in seconds.items()}}


def test_a_steps_spans_end_where_its_step_ended_and_start_where_its_sampling_did():
    row = step_row(100.0, 8.0, 91.0, wait_batch=3.0, learn=2.5, publish=0.5, generate=6.0, verify=6.5)
    spans = timeline_row(row)
    assert spans["publish"] == [(99.5, 100.0)] and spans["learn"] == [(97.0, 99.5)]
    assert spans["wait_batch"] == [(94.0, 97.0)] and spans["step"] == [(92.0, 100.0)]
    assert spans["generate"] == [(91.0, 97.0)] and spans["verify"] == [(97.0, 97.5)]


def test_figures_are_the_timed_steps_means_and_a_share_may_pass_one_when_steps_overlap():
    rows = [step_row(0, 8.0, 0, generate=9.0, learn=2.0), step_row(0, 6.0, 0, generate=7.0, learn=4.0)]
    figures = figures_of(rows, samples=256)
    assert figures["seconds_per_step"] == 7.0 and figures["samples_per_s"] == pytest.approx(512 / 14)
    assert figures["busy_s"] == {"generate": 8.0, "learn": 3.0}  # only the components the rows have
    assert figures["idle_s"] == {"generate": 0.0, "learn": 4.0}
    assert figures["shares"] == pytest.approx({"generate": 8 / 7, "learn": 3 / 7})
