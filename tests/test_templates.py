"""The synthetic task templates (pipelines/tasks/templates): coverage of the registry, deterministic
renders, varied phrasing, and - through the real verifier - that every template's reference solution
passes its hidden tests while every mutant of it fails them.

All renders are verified in one batch through one module-scoped Verifier, so the Qiskit start-up
is paid once; the per-template tests below only read the verdicts.
"""

from __future__ import annotations

import random

import pytest

from actors.contracts import Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.verifier import Verifier
from pipelines.tasks.templates import (
    DIFFICULTIES,
    MUTANT_KINDS,
    TEMPLATES,
    Draft,
    Mutant,
    Template,
    TemplateError,
    areas,
    difficulty_from,
    render,
    template,
)

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)
NAMES = sorted(TEMPLATES)


# ---------------------------------------------------------------- registry and renders (no verifier)


def test_registry_covers_the_areas():
    grouped = areas()
    assert len(TEMPLATES) >= 60, f"only {len(TEMPLATES)} templates"
    assert len(grouped) >= 12, f"only {len(grouped)} areas: {sorted(grouped)}"
    assert all(len(names) >= 3 for names in grouped.values()), {area: len(names) for area, names in grouped.items()}


@pytest.mark.parametrize("name", NAMES)
def test_render_is_deterministic_and_well_formed(name):
    for seed in SEEDS:
        task, mutants = render(name, seed)
        assert render(name, seed) == (task, mutants)
        assert isinstance(task, Task)
        assert task.task_id == f"synthetic/{name}/{seed}"
        assert (task.family, task.harness, task.area) == ("synthetic", "unittest", TEMPLATES[name].area)
        assert task.difficulty in DIFFICULTIES
        assert task.metadata["template"] == name and task.metadata["seed"] == seed
        assert {"phrasing", "num_qubits", "gate_count", "concepts"} <= set(task.metadata)
        assert task.reference_solution and "unittest.TestCase" in task.tests
        assert "`" in task.prompt, "the prompt must name the variables or functions the tests read"
        assert len(mutants) >= 2
        assert any(mutant.kind in MUTANT_KINDS for mutant in mutants), [m.kind for m in mutants]
        for mutant in mutants:
            assert isinstance(mutant, Mutant) and mutant.kind.isidentifier()
            assert mutant.code != task.reference_solution


@pytest.mark.parametrize("name", NAMES)
def test_seeds_vary_the_task_and_its_phrasing(name):
    tasks = [render(name, seed)[0] for seed in range(10)]
    distinct = {(task.prompt, task.tests, task.reference_solution) for task in tasks[:6]}
    assert len(distinct) >= 3, f"{name}: seeds 0-5 give only {len(distinct)} different tasks"
    assert len({task.metadata["phrasing"] for task in tasks}) >= 2, f"{name}: one phrasing for seeds 0-9"


def test_most_templates_differ_on_every_seed():
    varied = [name for name in NAMES if len({render(name, seed)[0].tests for seed in SEEDS}) == len(SEEDS)]
    assert len(varied) >= 0.8 * len(NAMES), sorted(set(NAMES) - set(varied))


def test_difficulty_follows_the_features():
    assert difficulty_from({"num_qubits": 1, "gate_count": 1, "concepts": ["rotation"]}) == "basic"
    assert difficulty_from({"num_qubits": 3, "gate_count": 10, "concepts": ["a", "b"]}) == "intermediate"
    assert difficulty_from({"num_qubits": 5, "gate_count": 25, "concepts": ["a", "b", "c"]}) == "difficult"
    rendered = {render(name, seed)[0].difficulty for name in NAMES for seed in SEEDS}
    assert rendered == set(DIFFICULTIES)


def test_a_failing_render_names_template_and_seed():
    def broken(rng: random.Random) -> Draft:
        raise ValueError("no such gate")

    with pytest.raises(TemplateError, match=r"'broken_example' failed to render seed 7: ValueError: no such gate"):
        Template("broken_example", "circuits", broken).render(7)
    with pytest.raises(TemplateError, match="no template named 'missing_template'"):
        render("missing_template", 3)


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(TemplateError, match="registered twice"):
        template(NAMES[0], area="circuits")(lambda rng: None)


# ---------------------------------------------------------------- verification of every render


@pytest.fixture(scope="module")
def verdicts():
    """{(name, seed): (task, reference verdict, [(mutant, verdict), ...])} for every template and seed."""
    renders = [(name, seed, *render(name, seed)) for name in NAMES for seed in SEEDS]
    jobs = []
    for _, _, task, mutants in renders:
        jobs.append(VerificationJob(task, task.reference_solution))
        jobs.extend(VerificationJob(task, mutant.code) for mutant in mutants)
    with Verifier(VerifierConfig(timeout_s=60), slots=2) as verifier:
        results = iter(verifier.run(jobs))
    return {(name, seed): (task, next(results), [(mutant, next(results)) for mutant in mutants])
            for name, seed, task, mutants in renders}


def _explain(name: str, seed: int, what: str, verdict: Verdict) -> str:
    return (f"template {name!r} seed {seed} {what}: status {verdict.status}, "
            f"{verdict.tests_passed}/{verdict.tests_total} tests\n{verdict.stderr_tail[-3000:]}")


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes(verdicts, name):
    for seed in SEEDS:
        _, verdict, _ = verdicts[name, seed]
        assert verdict.status == "passed", _explain(name, seed, "reference", verdict)


@pytest.mark.parametrize("name", NAMES)
def test_every_mutant_fails(verdicts, name):
    for seed in SEEDS:
        _, _, mutants = verdicts[name, seed]
        for mutant, verdict in mutants:
            assert verdict.status != "passed", _explain(name, seed, f"mutant {mutant.kind!r} passed", verdict)

