"""`qvr recipe`: jobs chained from one YAML, each stage's outputs feeding the next by path.

The IBM pipeline is synth -> buckets A/B -> sft and/or pairs -> dpo (or orpo) -> grpo -> eval; a
recipe names its stages in order, each a job of the registry (pipelines/jobs.py) with its preset
and overrides. An override's value may name what an earlier stage produced: ``{stage.key}`` is
that stage's summary value (``rollout.model={sft.policy}``, ``data.train={synth.bucket_a_path}``,
``tasks.source={synth.output}``); a name that no earlier stage has is a config error before
anything runs.

Each stage runs in its own folder under the recipe's (``stages/NN-name``); a stage whose folder
holds a summary without an error is finished, and rerunning the recipe skips it and reuses its
summary (resume by stage: a recipe killed in its GRPO stage reruns only GRPO on). The recipe's
folder is ``run.root/recipe-<name>``, the same on every rerun. The whole recipe is one process, so
on a cluster it is one ``ray job submit``; each stage joins the same Ray.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from actors.config import Config as BaseConfig
from pipelines.job import JobConfig, bill_qpu_to
from pipelines.runs import Run

log = logging.getLogger("qvr.recipe")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w-]*)\.([\w.]+)\}")
NAME = re.compile(r"^[A-Za-z_][\w-]*$")


class StageConfig(BaseConfig):
    """One stage: a job, its preset and its overrides."""

    job: str
    """A job of the registry: synth, sft, dpo, orpo, pairs, grpo, eval, verify, bench."""

    config: str | None = None
    """The job's YAML preset (None: its defaults)."""

    overrides: list[str] = []
    """``a.b=c`` overrides on top of the preset; ``{stage.key}`` in a value is an earlier stage's
    summary value (e.g. ``rollout.model={sft.policy}``)."""

    @field_validator("job")
    @classmethod
    def _known_job(cls, job: str) -> str:
        from pipelines.jobs import JOBS

        if job not in JOBS or job == "recipe":
            raise ValueError(f"unknown job {job!r}; jobs: {', '.join(name for name in JOBS if name != 'recipe')}")
        return job


class Config(JobConfig):
    name: str = Field("recipe", pattern=NAME.pattern)
    """The recipe's name: its folder is ``run.root/recipe-<name>``, found again on a rerun."""

    stages: dict[str, StageConfig] = {}
    """Stage name -> stage, run in this order."""

    @model_validator(mode="after")
    def _placeholders_name_earlier_stages(self) -> Config:
        if not self.stages:
            raise ValueError("stages: a recipe needs at least one stage")
        seen: list[str] = []
        for name, stage in self.stages.items():
            if not NAME.match(name):
                raise ValueError(f"stages.{name}: a stage name is letters, digits, '_' and '-'")
            for override in stage.overrides:
                for stage_name, _ in PLACEHOLDER.findall(override):
                    if stage_name not in seen:
                        raise ValueError(f"stages.{name}.overrides: {override!r} names {stage_name!r}, which is "
                                         f"not an earlier stage (earlier: {', '.join(seen) or 'none'})")
            seen.append(name)
        return self


def run_path(config: Config) -> Path:
    """The same folder on every rerun: finished stages are found there and skipped."""
    path = Path(config.run.root) / f"recipe-{config.name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check(config: Config) -> None:
    """Each stage's preset and its plain overrides resolve, before anything runs (overrides that
    name an earlier stage's output are checked when that output exists)."""
    from pipelines.config import ConfigError, resolve_config
    from pipelines.jobs import job_module

    problems = []
    for name, stage in config.stages.items():
        overrides = [override for override in stage.overrides if not PLACEHOLDER.search(override)]
        try:
            resolve_config(job_module(stage.job).Config, stage.config, overrides)
        except (ConfigError, OSError) as error:
            problems.append(f"stages.{name} ({stage.job}): {error}")
    if problems:
        raise ConfigError("\n".join(problems))


def filled(override: str, summaries: dict[str, dict[str, Any]], stage: str) -> str:
    """``override`` with each ``{stage.key}`` replaced by that stage's summary value."""
    from pipelines.config import ConfigError

    def value(match: re.Match) -> str:
        found: Any = summaries[match.group(1)]
        for part in match.group(2).split("."):
            if not isinstance(found, dict) or part not in found:
                keys = ", ".join(sorted(found)) if isinstance(found, dict) else type(found).__name__
                raise ConfigError(f"stages.{stage}: {override!r}: stage {match.group(1)!r} has no "
                                  f"{match.group(2)!r} in its summary (it has: {keys})")
            found = found[part]
        return str(found)

    return PLACEHOLDER.sub(value, override)


def finished_summary(folder: Path) -> dict[str, Any] | None:
    summary = folder / "summary.json"
    if not summary.is_file():
        return None
    data = json.loads(summary.read_text())
    return None if data.get("error") else data


def run(config: Config, run: Run) -> dict[str, Any]:
    from pipelines.config import resolve_config
    from pipelines.jobs import job_module

    summaries: dict[str, dict[str, Any]] = {}
    stages: list[dict[str, Any]] = []
    for index, (name, stage) in enumerate(config.stages.items(), 1):
        folder = run.path / "stages" / f"{index:02d}-{name}"
        done = finished_summary(folder)
        if done is not None:
            print(f"[{index}/{len(config.stages)}] {name} ({stage.job}): finished earlier, skipped", flush=True)
            summaries[name] = done
            stages.append({"stage": name, "job": stage.job, "status": "skipped", "run_dir": str(folder)})
            continue
        module = job_module(stage.job)
        overrides = [filled(override, summaries, name) for override in stage.overrides]
        stage_config = resolve_config(module.Config, stage.config, overrides)
        if hasattr(module, "check"):
            module.check(stage_config)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"[{index}/{len(config.stages)}] {name} ({stage.job}) ...", flush=True)
        started = time.monotonic()
        stage_run = Run(stage.job, stage_config, stage_config.run, folder)
        try:
            summary = {"job": stage.job, "run_dir": str(folder),
                       **module.run(bill_qpu_to(stage_config, str(folder.resolve())), stage_run)}
        except Exception as error:
            stage_run.write_summary({"job": stage.job, "run_dir": str(folder),
                                     "error": f"{type(error).__name__}: {error}"})
            raise RuntimeError(f"stage {name!r} ({stage.job}) failed: {error}") from error
        finally:
            stage_run.close()
        stage_run.write_summary(summary)
        wall_s = round(time.monotonic() - started, 1)
        print(f"[{index}/{len(config.stages)}] {name} ({stage.job}): done in {wall_s} s", flush=True)
        summaries[name] = summary
        stages.append({"stage": name, "job": stage.job, "status": "done", "run_dir": str(folder), "wall_s": wall_s})
    heldout = [{"stage": label, "pass_at_1": value} for stage in stages
               for label, value in heldout_pass_at_1(stage["stage"], summaries[stage["stage"]])]
    report = write_report(run.path, stages, summaries, heldout)
    if heldout:
        print("held-out pass@1: " + ", ".join(f"{row['stage']} {row['pass_at_1']:.3f}" for row in heldout), flush=True)
    return {"stages": stages, "heldout": heldout, "report": str(report)}


def heldout_pass_at_1(stage: str, summary: dict[str, Any]) -> list[tuple[str, float]]:
    """The held-out pass@1 a stage's summary carries, labelled: an offline job's eval hook (its
    starting policy as ``stage:start``, its final one as ``stage``), GRPO's final evaluation, and
    an eval job's models on its first benchmark (``stage:model``)."""
    found: list[tuple[str, float]] = []
    evaluation = summary.get("eval") or {}
    if "after" in evaluation or "before" in evaluation:
        for tag, label in (("before", f"{stage}:start"), ("after", stage)):
            if "pass@1" in evaluation.get(tag, {}):
                found.append((label, float(evaluation[tag]["pass@1"])))
    elif "eval/pass@1" in evaluation:
        found.append((stage, float(evaluation["eval/pass@1"])))
    for model, result in (summary.get("models") or {}).items():
        benchmarks = result.get("benchmarks") or {}
        if benchmarks:
            first = next(iter(benchmarks.values()))
            if "1" in (first.get("pass_at_k") or {}):
                found.append((f"{stage}:{model}", float(first["pass_at_k"]["1"])))
    return found


HEADLINE_KEYS = ("tasks", "samples", "bucket_a", "bucket_b", "pairs", "steps", "heldout", "eval", "passed", "total",
                 "cache_hits", "cache_hit_rate", "cache_saved_s", "qpu")


def write_report(folder: Path, stages: list[dict[str, Any]], summaries: dict[str, dict[str, Any]],
                 heldout: list[dict[str, Any]]) -> Path:
    """``report.md``: held-out pass@1 after each stage (a table and ``heldout.png``), each stage's
    status, folder and headline numbers, and the curves each stage drew (its PNGs: losses,
    rewards, held-out pass@1 per evaluation), linked by relative path so that the report opens
    with its pictures in a browser or an editor's Markdown preview."""
    lines = ["# Recipe report", ""]
    if heldout:
        lines += ["| after | held-out pass@1 |", "|---|---|"]
        lines += [f"| {row['stage']} | {row['pass_at_1']:.3f} |" for row in heldout]
        lines.append("")
        plot_heldout(heldout, folder / "heldout.png")
        lines += ["![held-out pass@1 after each stage](heldout.png)", ""]
    lines += ["| stage | job | status | wall (s) | run |", "|---|---|---|---|---|"]
    for stage in stages:
        lines.append(f"| {stage['stage']} | {stage['job']} | {stage['status']} | {stage.get('wall_s', '')} | "
                     f"`{Path(stage['run_dir']).relative_to(folder)}` |")
    for stage in stages:
        summary = summaries[stage["stage"]]
        shown = {key: summary[key] for key in HEADLINE_KEYS if key in summary}
        pictures = sorted(Path(stage["run_dir"]).glob("*.png"))
        if shown or pictures:
            lines += ["", f"## {stage['stage']}"]
        if shown:
            lines += ["", "```json", json.dumps(shown, indent=2, default=str), "```"]
        for picture in pictures:
            lines += ["", f"![{stage['stage']}: {picture.stem}]({picture.relative_to(folder)})"]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_heldout(heldout: list[dict[str, Any]], path: Path) -> None:
    """Held-out pass@1 after each stage, in the recipe's order, as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(max(4.0, 1.1 * len(heldout)), 3.2))
    bars = axis.bar([row["stage"] for row in heldout], [row["pass_at_1"] for row in heldout], color="#4c72b0")
    axis.bar_label(bars, fmt="%.3f")
    axis.set_ylabel("held-out pass@1")
    axis.set_ylim(0, max(1.0, max(row["pass_at_1"] for row in heldout) * 1.15))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
