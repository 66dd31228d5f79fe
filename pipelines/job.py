"""What every job shares: its config base (run directory, Ray) and how it connects to Ray."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from actors.config import Config
from pipelines.runs import RunConfig

if TYPE_CHECKING:
    from pipelines.cluster import Demand

log = logging.getLogger("qvr")


class RayConfig(Config):
    num_cpus: int | None = Field(None, ge=1)
    """Logical CPUs of the embedded local Ray; None = all cores. Ignored when joining a cluster
    (RAY_ADDRESS set, or under `ray job submit`): the cluster decides."""

    object_store_memory_mb: int | None = Field(None, ge=80)
    """Object store size of the embedded local Ray in MiB; None = Ray's default."""

    include_dashboard: bool = False
    """Start the dashboard with the embedded local Ray."""

    namespace: str = "qvr"
    """Ray namespace: named actors (the QPU gateway) are shared within it across jobs."""


class CheckpointSettings(Config):
    """When the learner reports checkpoints, how many are kept, how often Ray Train restarts it."""

    every: int = Field(1, ge=1)
    """Report a checkpoint every N optimizer steps (and after the last)."""

    keep: int = Field(2, ge=1)
    """Checkpoints kept on storage (the newest)."""

    max_failures: int = Field(1, ge=-1)
    """Ray Train restarts of the learner from the latest checkpoint before the run fails; -1 = no limit."""


class JobConfig(Config):
    """Base of every job's config: where its run goes and how it reaches Ray."""

    run: RunConfig = RunConfig()
    """Run directory and metric sinks."""

    ray: RayConfig = RayConfig()
    """Ray connection; ray.init() is called without an address."""


def joins_cluster() -> bool:
    """Whether ray.init() will join an existing cluster rather than start an embedded one."""
    return bool(os.environ.get("RAY_ADDRESS"))


_embedded_gcs: str | None = None
"""The GCS address of the embedded local Ray that connect_ray started (it has no autoscaler)."""


def connect_ray(config: RayConfig, needs: Iterable[Demand] = ()) -> None:
    """ray.init() without an address: Ray itself decides. It joins the cluster named by RAY_ADDRESS
    (as under `ray job submit`) or one started with `ray start` on this machine, and otherwise
    starts an embedded local Ray, the only case where this config's local sizes apply.

    ``needs``: the workers the job is about to start (pipelines/cluster.py). Before any starts,
    workers that the cluster cannot hold and cannot grow to hold are a ClusterResourcesError (a
    ConfigError: exit 2, naming the setting and what the cluster has); on a cluster whose
    autoscaler can add nodes the job goes on, with one line saying what its workers wait for.
    Checked on every call, also when Ray is already connected (a recipe's later stages)."""
    global _embedded_gcs
    import ray

    from pipelines.cluster import check_resources

    if not ray.is_initialized():
        if _init_ray(config):
            _embedded_gcs = ray.get_runtime_context().gcs_address
    check_resources(needs, embedded=ray.get_runtime_context().gcs_address == _embedded_gcs)


def _init_ray(config: RayConfig) -> bool:
    """ray.init(); whether it started an embedded local Ray (rather than joining a cluster)."""
    import ray

    # Ray's driver-side logs join qvr's logging (the run's log file; the console only with
    # --verbose or from ERROR, pipelines/console.py) instead of Ray's own console handler.
    logging.getLogger("ray").propagate = True
    quiet = {"namespace": config.namespace, "configure_logging": False}
    if joins_cluster():
        ray.init(**quiet)
    else:
        memory = config.object_store_memory_mb * 1024 * 1024 if config.object_store_memory_mb else None
        try:
            _start_embedded(num_cpus=config.num_cpus, object_store_memory=memory,
                            include_dashboard=config.include_dashboard,
                            runtime_env={"worker_process_setup_hook": "pipelines.job.pin_ray_address"}, **quiet)
        except ValueError:
            # Ray found a local `ray start` cluster and refuses local sizes for it: join it as it is.
            ray.init(**quiet)
            log.info("joined the local Ray cluster started with `ray start` (ray.* sizes ignored)")
    from pipelines.console import LOG_FILE_ONLY, keep_ray_off_the_console

    keep_ray_off_the_console()
    log.info("ray: %s", ray.cluster_resources(), extra=LOG_FILE_ONLY)
    # This process started the head node itself (an embedded Ray) rather than connecting to one.
    node = getattr(ray._private.worker, "_global_node", None)
    return bool(node is not None and getattr(node, "head", False))


EMBEDDED_START_TRIES = 3


def _start_embedded(**init: object) -> None:
    """ray.init() of a local Ray, tried again when its node does not register in time: Ray waits a
    fixed 30 s for its raylet (ray/_private/node.py), which a machine busy with other work can
    exceed; a later try on the same machine then starts in seconds."""
    import ray

    for attempt in range(1, EMBEDDED_START_TRIES + 1):
        try:
            ray.init(**init)
            return
        except Exception as error:  # noqa: BLE001 - Ray raises a bare Exception for this
            if "timed out during startup" not in str(error) or attempt == EMBEDDED_START_TRIES:
                raise
            log.warning("Ray's local node did not start in time (a busy machine?); starting it again (%d of %d)",
                        attempt + 1, EMBEDDED_START_TRIES)
            ray.shutdown()


def pin_ray_address() -> None:
    """Every worker of an embedded Ray names its own cluster in RAY_ADDRESS (a worker process setup hook).

    Without it a worker that asks Ray's state API (Ray Train's placement-group cleaner does, every
    second) finds *the newest* Ray on the machine: with a second Ray started beside this one (another
    job, a test), the cleaner looked up its controller there, found none, and removed this run's
    placement group, killing the learner (seen here)."""
    import ray

    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address


def bill_qpu_to(config: Any, run: str) -> Any:
    """``config`` with every QPU config in it (``verifier.qpu``) billing its jobs to ``run`` (its
    ``run_id``, where none is set): a run's QPU budget is the run's, whichever of its pools and
    workers spend it. The config itself is left as it was (copies along the changed path)."""
    from pydantic import BaseModel

    from actors.verify.qpu.config import QpuConfig

    if isinstance(config, QpuConfig):
        return config if config.run_id else config.model_copy(update={"run_id": run})
    updates = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, BaseModel) and (billed := bill_qpu_to(value, run)) is not value:
            updates[name] = billed
    return config.model_copy(update=updates) if updates else config


def local_or_hub(name: str) -> str:
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


# --resume RUN_DIR, the same for every training job (grpo, sft, dpo, orpo): the job module re-exports
# these three under the names the CLI looks for (add_arguments, overrides_from, run_path).
def add_resume_argument(parser: Any) -> None:
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")


def resume_overrides(args: Any) -> list[str]:
    return [f"resume={args.resume}"] if getattr(args, "resume", None) else []


def resume_path(config: Any) -> Path | None:
    """--resume continues in the same run directory, which must hold a run's config and a complete
    checkpoint (a ConfigError otherwise: exit 2, nothing started)."""
    from actors.learner.checkpoint import latest
    from pipelines.config import ConfigError

    if config.resume is None:
        return None
    path = Path(config.resume)
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"--resume {path}: not a run directory (no config.yaml)")
    if latest(path) is None:
        raise ConfigError(f"--resume {path}: no complete checkpoint in it (nothing to continue from)")
    return path
