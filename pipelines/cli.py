"""The `qvr` command line (also `python -m pipelines`): one subcommand per job, plus `config show|reference`.

Exit status: 0 done, 1 the job failed, 2 bad usage, config or input (a ConfigError: before the
job starts, or once it has read its input, e.g. a dataset none of whose rows survive tokenizing).
With ``--json`` the last line of standard output is exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from typing import Any

from pipelines.config import ConfigError, dump_config, resolve_config
from pipelines.job import bill_qpu_to
from pipelines.jobs import JOBS, job_module

EXIT_FAILED, EXIT_USAGE = 1, 2
log = logging.getLogger("qvr")


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML preset (see configs/)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' INFO and WARNING logs on the console too (they always go to the run's log)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. verifier.timeout_s=30")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the job ``argv`` names gets its arguments (and its module imported).

    The top-level parser has no option that takes a value, so its first positional is the command.
    Each job's one-line help comes from the registry: ``qvr --help`` imports no job module.
    """
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((item for item in argv if not item.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="qvr", description="qvr: post-train code LLMs to write Qiskit with quantum-verifiable rewards.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, job in JOBS.items():
        job_parser = commands.add_parser(name, help=job.help, description=job.help)
        if name == chosen:
            _job_arguments(name, job_parser)
    config = commands.add_parser("config", help="show a job's resolved config (defaults <- --config <- overrides), "
                                                "or write the reference of every job's fields")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_commands.add_parser("show", help="print the resolved config of JOB")
    show.add_argument("job", choices=list(JOBS), metavar="JOB", help=f"one of: {', '.join(JOBS)}")
    show.add_argument("job_args", nargs=argparse.REMAINDER, metavar="...",
                      help="the job's own arguments: --config FILE, KEY=VALUE overrides, flags")
    reference = config_commands.add_parser("reference", help="every job's fields as markdown (docs/configuration.md)")
    reference.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    return parser


def _job_arguments(name: str, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    module = job_module(name)
    if hasattr(module, "add_arguments"):  # first: a job's own positionals come before the overrides
        module.add_arguments(parser)
    _common_arguments(parser)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Overrides may follow options (`--config F a.b=c`): argparse leaves such positionals over."""
    args, extra = parser.parse_known_args(argv)
    flags = [item for item in extra if item.startswith("-") or not hasattr(args, "overrides")]
    if flags:
        parser.error(f"unrecognized arguments: {' '.join(flags)}")
    if hasattr(args, "overrides"):
        args.overrides = list(args.overrides) + extra
    return args


def _resolve(job: str, args: argparse.Namespace) -> Any:
    module = job_module(job)
    overrides = list(args.overrides)
    if hasattr(module, "overrides_from"):
        overrides += module.overrides_from(args)
    return resolve_config(module.Config, args.config, overrides)


def _run_job(name: str, args: argparse.Namespace, config: Any, run_path: Any) -> int:
    from pipelines.runs import Run

    module = job_module(name)
    ray_was_up = _ray_initialized()
    run = Run(name, config, config.run, run_path)
    print(f"run directory: {run.path}", flush=True)
    status = 0
    try:
        summary = module.run(bill_qpu_to(config, str(run.path.resolve())), run)
        summary = {"job": name, "run_dir": str(run.path), **summary}
        run.write_summary(summary)
    except ConfigError as error:  # bad input found once the job read it (e.g. no row survived tokenizing),
        # or workers the Ray cluster cannot hold (pipelines/cluster.py: a config error)
        print(f"qvr: {getattr(error, 'label', 'input error')}:\n{error}", file=sys.stderr, flush=True)
        summary = {"job": name, "run_dir": str(run.path), "error": f"{type(error).__name__}: {error}"}
        run.write_summary(summary)
        status = EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - reported, logged to the run, exit status 1
        log.error("%s failed: %s\n%s", name, error, traceback.format_exc())
        summary = {"job": name, "run_dir": str(run.path), "error": f"{type(error).__name__}: {error}"}
        run.write_summary(summary)
        status = EXIT_FAILED
    finally:
        run.close()
        if not ray_was_up:  # a job shuts down only a Ray it started (a caller's stays, e.g. a test session's)
            _shutdown_ray()
    print(f"run directory: {run.path} ({'done' if status == 0 else 'failed'})", flush=True)
    if args.json:
        print(json.dumps(summary, default=str), flush=True)
    return status


def _ray_initialized() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _shutdown_ray() -> None:
    """Disconnect before the final line so that no late Ray output follows the JSON."""
    if _ray_initialized():
        sys.modules["ray"].shutdown()


def main(argv: list[str] | None = None) -> int:
    from pipelines.console import setup_logging

    args = _parse(build_parser(argv), argv)
    setup_logging(verbose=getattr(args, "verbose", False))
    job = args.command
    if args.command == "config" and args.config_command == "reference":
        from pipelines.reference import write_reference
        return write_reference(args.output)
    if args.command == "config":
        job = args.job
        show = argparse.ArgumentParser(prog=f"qvr config show {job}")
        args = _parse(_job_arguments(job, show), args.job_args)
        args.command = "config"
    try:
        config = _resolve(job, args)
        if args.command != "config" and hasattr(job_module(job), "check"):
            job_module(job).check(config)  # a job's own inputs (files it reads), before anything starts
        # A job may continue an existing run directory (`qvr grpo --resume RUN_DIR`).
        run_path = job_module(job).run_path(config) if hasattr(job_module(job), "run_path") else None
    except ConfigError as error:
        print(f"qvr: config error:\n{error}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "config":
        print(json.dumps(config.model_dump(mode="json")) if args.json else dump_config(config), end="\n")
        return 0
    return _run_job(job, args, config, run_path)


def entry() -> None:
    sys.exit(main())
