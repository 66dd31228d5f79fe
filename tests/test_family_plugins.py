"""A task family is a plug-in: a toy family, registered from this test (its harness from
tests/toy_family.py, a module outside qvr's packages), goes through every layer without an edit
to any file of the project: the task loader reads its rows, the real Verifier's zygote imports,
warms and runs its harness (``verifier.sandbox.plugins``), the parent takes its own measure and
scores it by its reward (the family's default weights come from the reward's registration),
``qvr eval``'s metrics and report carry its numbers, and ``qvr synth``'s config offers it."""

import json
import sys

import pytest

from actors.config import Config
from actors.contracts import Completion, Task
from actors.verify.rewards.measures import PARENT_MEASURES, ParentMeasure, where
from actors.verify.rewards.measures import register as register_measure
from actors.verify.rewards.registry import FAMILY_WEIGHTS, READS, REWARDS, RewardInput, reward
from actors.verify.sandbox.harnesses.registry import HARNESSES
from pipelines.tasks.families.registry import FAMILIES, Family, RowReader, Synth, register

TOY_ROWS = [{"toy_id": "greet", "toy_prompt": "Say hello and world.", "toy_words": ["hello", "world"]},
            {"toy_id": "count", "toy_prompt": "Count to three.", "toy_words": ["one", "two", "three"]}]


class ToySpec(Config):
    """What ``qvr synth`` would generate for the toy family."""

    words: int = 2
    """Words per task."""


def toy_row(row: dict) -> Task:
    return Task(task_id=row["toy_id"], family="toy", harness="toy_words", prompt=row["toy_prompt"],
                tests=json.dumps({"words": row["toy_words"]}))


def toy_metrics(rows):
    rows = [row for row in rows if row.get("family") == "toy"]
    if not rows:
        return None
    words = [json.loads(row["measures"]).get("words", 0.0) for row in rows]
    return {"tasks": len({row["task_id"] for row in rows}), "words@1": sum(words) / len(words)}


def toy_report(results, benchmarks):
    rows = [f"| {model} | {name} | {toy['words@1']:.2f} |" for model, per_benchmark in results.items()
            for name in benchmarks if (toy := per_benchmark.get(name, {}).get("toy"))]
    return ["## Toy words", "", "| model | benchmark | words@1 |", "|---|---|---|", *rows, ""] if rows else []


@pytest.fixture(scope="module")
def toy():
    """The toy family in every layer, registered here; unregistered afterwards."""
    import tests.toy_family  # noqa: F401 - its harness, in this (the parent's) registry too

    class ToyLength(ParentMeasure):
        name = "toy_length"

        def measure(self, task, code, config):
            return {"chars": float(len(code or ""))}

    register_measure(ToyLength)

    @reward("toy_words", reads=("toy_length",), families={"toy": 1.0})
    def toy_reward(result: RewardInput) -> float:
        fraction = result.tests_passed / result.tests_total if result.tests_total else 0.0
        return fraction + result.measures.get("toy_length.chars", 0.0) / 1000

    synthesized = []
    register(Family("toy", synth=Synth(section="toy", spec=ToySpec, doc="toy word tasks",
                                       run=lambda config, run: synthesized.append(config.toy) or {"tasks": 0}),
                    rows=RowReader(columns=frozenset({"toy_prompt", "toy_words"}), to_task=toy_row),
                    metrics=toy_metrics, report=toy_report))
    try:
        yield synthesized
    finally:
        FAMILIES.pop("toy")
        REWARDS.pop("toy_words")
        READS.pop("toy_words")
        FAMILY_WEIGHTS.pop("toy")
        PARENT_MEASURES.pop("toy_length")
        HARNESSES.pop("toy_words")
        sys.modules.pop("tests.toy_family")


@pytest.fixture
def toy_tasks(toy, tmp_path):
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks

    source = tmp_path / "toy.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in TOY_ROWS))
    return load_tasks(TaskSourceConfig(source=str(source)))


def test_the_loader_reads_a_familys_own_rows(toy_tasks):
    assert [(task.task_id, task.family, task.harness) for task in toy_tasks] == [
        ("greet", "toy", "toy_words"), ("count", "toy", "toy_words")]


def test_extraction_and_measures_ask_the_registries(toy):
    from actors.verify.extract import extract_code
    from actors.verify.rewards.config import RewardConfig

    assert extract_code("<think>```words\nno\n```</think>Sure:\n```words\nhello world\n```", "toy_words") == "hello world\n"
    assert extract_code("WORDS: one two", "toy_words") == "WORDS: one two"
    assert extract_code("nothing here", "toy_words") is None
    assert (where("toy_length"), where("deprecation"), where("circuit")) == ("parent", "parent", "checker")
    assert RewardConfig().weights_for("toy") == {"toy_words": 1.0}  # the reward's registration, no config edit


def test_synth_config_offers_every_registered_family(toy):
    from pipelines import synth
    from pipelines.job import JobConfig
    from pipelines.tasks.families.registry import synth_sections

    model = synth_sections(JobConfig)
    config = model(family="toy", toy={"words": 3})
    assert {"spec", "quasar", "toy"} <= set(model.model_fields) and config.toy.words == 3
    assert synth.run(config, None) == {"tasks": 0} and toy == [ToySpec(words=3)]
    with pytest.raises(ValueError, match="family"):
        model(family="nope")


def test_eval_metrics_and_report_carry_the_familys_numbers(toy):
    from pipelines.evaluation.metrics import benchmark_metrics, flat_metrics
    from pipelines.evaluation.report import render_report

    rows = [{"task_id": task, "family": "toy", "mode": "sampled", "status": status, "measures": json.dumps({"words": words})}
            for task, status, words in (("greet", "passed", 2.0), ("count", "failed", 1.0))]
    metrics = benchmark_metrics(rows, [1])
    assert metrics["toy"] == {"tasks": 2, "words@1": 1.5}
    assert flat_metrics(metrics)["eval/toy/words@1"] == 1.5
    assert "## Toy words" in render_report({"model": {"toy-set": metrics}})
    assert "toy" not in benchmark_metrics([{**rows[0], "family": "synthetic"}], [1])


@pytest.mark.slow
def test_a_toy_family_through_the_real_verifier(toy_tasks):
    """The zygote imports the plug-in harness (verifier.sandbox.plugins) and warms it before it
    forks; the parent replaces the measure the record forged with its own and scores the verdict
    by the toy reward, the family's default."""
    from actors.verify.config import VerifierConfig
    from actors.verify.rewards.config import RewardConfig
    from actors.verify.verifier import Verifier

    config = VerifierConfig(isolation="shared", timeout_s=60, rewards=RewardConfig(),
                            sandbox={"plugins": ["tests.toy_family"]})
    greet, count = toy_tasks
    completions = [Completion(task_id="greet", sample_idx=0, text="```words\nhello world\n```"),
                   Completion(task_id="count", sample_idx=0, text="WORDS: one three"),
                   Completion(task_id="count", sample_idx=1, text="I cannot count.")]
    with Verifier(config, slots=1) as verifier:
        full, partial, none = verifier.verify(toy_tasks, completions)
    assert full.status == "passed" and full.outcomes == {"hello": "passed", "world": "passed"}, full.stderr_tail
    assert full.measures["warmed"] == 1.0 and full.measures["words"] == 2.0
    assert full.measures["toy_length.chars"] == len("hello world\n")  # the parent's own, not the forged 999
    assert "toy_length.bonus" not in full.measures  # a parent measure's name: the record cannot claim it
    assert full.reward == pytest.approx(1.0 + 12 / 1000) and set(full.reward_parts) == {"toy_words"}
    assert (partial.status, partial.tests_passed, partial.tests_total) == ("failed", 2, 3)
    assert partial.reward == pytest.approx(2 / 3 + len("WORDS: one three") / 1000)
    assert none.status == "error" and "no code" in none.stderr_tail and none.reward == 0.0
