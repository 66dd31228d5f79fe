"""Whether the Ray cluster can hold the workers a job is about to start: checked once, right after
the job connects to Ray (:func:`pipelines.job.connect_ray`, ``needs=``) and before any worker starts.

A job lists what it will start as :class:`Demand` s: the verifier pool's workers (``pool.*``), the
rollout workers (``rollout.*``), the learner ranks (``learner.*``), each ``count`` actors that hold
``bundle`` on one node. Two things that no waiting changes on a cluster that cannot grow:

- a bundle that no node can hold, compared with each live node's *total* resources (what other
  jobs hold now does not matter: they finish): a ``verifier`` resource where no node has one
  (``pool.use_verifier_resource``), a GPU on a CPU machine (``rollout.num_gpus``,
  ``learner.use_gpu``), more CPUs than the largest node has;
- more of a resource, for the workers that run at once (one ``phase``), than all nodes together
  have (``pool.workers`` x ``pool.slots_per_worker`` x ``pool.cpus_per_slot`` ...).

Either is a :class:`ClusterResourcesError` (a ConfigError: exit 2) that names the setting and what
the cluster has, unless the cluster can grow; then the job goes on and its workers wait for the
new nodes, with one console line that says what they wait for.

How a cluster that can grow is told from one that cannot (:func:`cluster_growth`):

- the embedded Ray a job starts on its own machine (``pipelines.job.connect_ray``) has no
  autoscaler: it cannot grow, decided without asking;
- on a cluster the job joined (``RAY_ADDRESS``, ``ray job submit``, ``ray start``), the
  autoscaler is asked through the GCS, as ``ray status`` asks it. Ray's head always runs a
  monitor; the v1 autoscaler (Ray's default, KubeRay's ``version: v1``) writes its report to the
  GCS's key-value store (``ray._private.ray_constants.DEBUG_AUTOSCALING_STATUS``, what
  ``ray status`` prints), the v2 autoscaler reports an ``AutoscalingState`` to the GCS
  (``ray.autoscaler.v2.sdk.get_cluster_status``). Without an autoscaling config (a cluster put
  together with ``ray start``) the monitor runs a *read-only* provider that only mirrors the
  nodes there are, one node type per node, named ``node_<node id>``
  (``ray.autoscaler._private.util.format_readonly_node_type``). So: a report whose node types are
  all such mirrors, or no report within ``report_wait_s``, means the cluster cannot grow; a
  report that names real node types (``ray.head.default``, KubeRay's group names) means an
  autoscaler that launches nodes runs, and the job waits. Neither report lists the node types
  the autoscaler *could* launch with their resources, so on a growing cluster a bundle that
  none of its types holds is not caught here: Ray's autoscaler itself reports it ("No
  available node types can fulfill resource request ...", in ``ray status``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.config import ConfigError

log = logging.getLogger("qvr.cluster")

READONLY_NODE_TYPE = re.compile(r"^node_[0-9a-f]{16,}$")
"""The node type Ray's read-only provider gives each node it mirrors (``node_<node id in hex>``)."""

GIB = 1024 ** 3


class ClusterResourcesError(ConfigError):
    """Workers a job would start that this Ray cluster cannot hold and cannot grow to hold."""

    label = "config error"
    """How the CLI introduces the message (pipelines/cli.py)."""


@dataclass(frozen=True)
class Demand:
    """``count`` actors of one kind, each holding ``bundle`` (Ray resources) on one node."""

    what: str
    """What they are, in the plural: ``verifier workers``."""

    count: int
    count_setting: str
    """The setting that says how many: ``pool.workers``."""

    bundle: dict[str, float]
    settings: dict[str, str] = field(default_factory=dict)
    """Resource -> the setting that asks for it, as a person reads it (``pool.use_verifier_resource=true``)."""

    phase: str = "main"
    """Demands of one phase run at once (their sums must fit the cluster); phases run one after the other."""

    def setting_for(self, resource: str) -> str:
        return self.settings.get(resource, self.count_setting)


def _number(value: float) -> str:
    return f"{value:g}"


def pool_demand(pool: Any, section: str = "pool", phase: str = "main") -> Demand:
    """The verifier pool's workers (actors/verify/pool/pool.py asks for exactly this per worker)."""
    slots = pool.slots_per_worker
    bundle = {"CPU": slots * pool.cpus_per_slot}
    settings = {"CPU": f"{section}.slots_per_worker={slots} x {section}.cpus_per_slot={_number(pool.cpus_per_slot)}"}
    if pool.use_verifier_resource:
        bundle["verifier"] = float(slots)
        settings["verifier"] = (f"{section}.use_verifier_resource=true (one `verifier` per slot, "
                                f"{section}.slots_per_worker={slots})")
    return Demand("verifier workers", pool.workers, f"{section}.workers", bundle, settings, phase)


def rollout_demand(rollout: Any, section: str = "rollout", phase: str = "main") -> Demand:
    """The rollout workers (actors/rollout/worker.py: ``num_cpus``, ``num_gpus`` per worker)."""
    bundle = {"CPU": float(rollout.num_cpus)}
    settings = {"CPU": f"{section}.num_cpus={_number(rollout.num_cpus)}"}
    if rollout.num_gpus:
        bundle["GPU"] = float(rollout.num_gpus)
        settings["GPU"] = f"{section}.num_gpus={_number(rollout.num_gpus)}"
    return Demand("rollout workers", rollout.workers, f"{section}.workers", bundle, settings, phase)


def learner_demand(learner: Any, section: str = "learner", phase: str = "main") -> Demand:
    """The learner ranks (Ray Train's ScalingConfig: ``cpus_per_worker`` CPUs, one GPU with ``use_gpu``)."""
    bundle = {"CPU": float(learner.cpus_per_worker)}
    settings = {"CPU": f"{section}.cpus_per_worker={_number(learner.cpus_per_worker)}"}
    if learner.use_gpu:
        bundle["GPU"] = 1.0
        settings["GPU"] = f"{section}.use_gpu=true (one GPU per rank)"
    return Demand("learner ranks", learner.workers, f"{section}.workers", bundle, settings, phase)


# ---------------------------------------------------------------- what the nodes hold


def _fits(bundle: dict[str, float], node: dict[str, float]) -> bool:
    return all(node.get(resource, 0.0) + 1e-9 >= amount for resource, amount in bundle.items() if amount > 0)


def unmet(demands: Iterable[Demand], nodes: Sequence[dict[str, float]]) -> list[str]:
    """What the nodes (each its total resources) cannot hold, one line per problem naming the
    setting; empty when every bundle fits some node and every phase's sums fit the cluster."""
    demands = [demand for demand in demands if demand.count > 0 and any(v > 0 for v in demand.bundle.values())]
    problems: list[str] = []
    reported: set[tuple[str, str]] = set()  # (phase, resource) already explained by a bundle that fits nowhere
    for demand in demands:
        if any(_fits(demand.bundle, node) for node in nodes):
            continue
        largest = {resource: max((node.get(resource, 0.0) for node in nodes), default=0.0)
                   for resource in demand.bundle}
        # What no node has at all first (a `verifier`, a GPU), then what no node has enough of.
        short = sorted((resource for resource, amount in demand.bundle.items() if amount > largest[resource] + 1e-9),
                       key=lambda resource: largest[resource] > 0)
        named = short or list(demand.bundle)
        reasons = [f"no node has `{resource}`" if largest[resource] <= 0 else
                   f"the largest node has {_number(largest[resource])} {resource}" for resource in short]
        settings = "; ".join(dict.fromkeys(demand.setting_for(resource) for resource in named))
        problems.append(f"{settings}: the {demand.what} ({demand.count_setting}={demand.count}) need "
                        f"{format_resources(demand.bundle)} each, on one node, but "
                        f"{', '.join(reasons) if reasons else 'no node has all of that at once'}")
        reported.update((demand.phase, resource) for resource in named)
    totals = _sum(nodes)
    for phase in dict.fromkeys(demand.phase for demand in demands):
        members = [demand for demand in demands if demand.phase == phase]
        for resource in dict.fromkeys(resource for demand in members for resource in demand.bundle):
            parts = [demand for demand in members if demand.bundle.get(resource, 0.0) > 0]
            wanted = sum(demand.count * demand.bundle[resource] for demand in parts)
            if wanted <= totals.get(resource, 0.0) + 1e-9 or (phase, resource) in reported:
                continue
            settings = "; ".join(dict.fromkeys(f"{demand.count_setting}={demand.count} x "
                                               f"{demand.setting_for(resource)}" for demand in parts))
            breakdown = " + ".join(f"{demand.count} {demand.what} x {_number(demand.bundle[resource])}"
                                   for demand in parts)
            problems.append(f"{settings}: the workers that run together need {_number(wanted)} {resource} "
                            f"({breakdown}), but all nodes together have {_number(totals.get(resource, 0.0))}")
    return problems


def _sum(nodes: Sequence[dict[str, float]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for node in nodes:
        for resource, amount in node.items():
            totals[resource] = totals.get(resource, 0.0) + amount
    return totals


def _shown(resource: str) -> bool:
    return not resource.startswith("node:")


def format_resources(resources: dict[str, float]) -> str:
    """``CPU 16, verifier 16, memory 60 GiB`` (memory in GiB; Ray's per-node ``node:`` markers left out)."""
    order = ["CPU", "GPU"]
    names = sorted((name for name in resources if _shown(name)), key=lambda name: (
        order.index(name) if name in order else len(order) + (name in ("memory", "object_store_memory")), name))
    return ", ".join(f"{name} {resources[name] / GIB:.1f} GiB" if name in ("memory", "object_store_memory")
                     else f"{name} {_number(resources[name])}" for name in names)


def describe_cluster(nodes: Sequence[dict[str, float]]) -> str:
    """What the cluster has: one node's resources, or each kind of node's (nodes alike counted once)."""
    if not nodes:
        return "no live node"
    if len(nodes) == 1:
        return f"1 node: {format_resources(nodes[0])}"
    kinds = Counter(format_resources(node) for node in nodes)
    return f"{len(nodes)} nodes: " + "; ".join(f"{count} x [{shape}]" if count > 1 else f"[{shape}]"
                                                for shape, count in kinds.items())


def live_nodes() -> list[dict[str, float]]:
    """Each live node's total resources (connected Ray)."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


# ---------------------------------------------------------------- can the cluster grow?


@dataclass(frozen=True)
class Growth:
    """Whether the cluster can add nodes, and in words why (for the messages)."""

    can_grow: bool
    how: str


def growth_from_v1_report(report: dict[str, Any] | None) -> Growth | None:
    """The v1 autoscaler's status (the JSON ``ray status`` reads) -> Growth; None while it holds no
    autoscaler report yet."""
    autoscaler = (report or {}).get("autoscaler_report")
    if not autoscaler:
        return None
    types = set(autoscaler.get("active_nodes") or {}) | set(autoscaler.get("pending_launches") or {})
    types |= {entry[-2] for entry in autoscaler.get("pending_nodes") or [] if len(entry) >= 2}
    types |= set((autoscaler.get("node_type_mapping") or {}).values())
    return _growth(types, "Ray's autoscaler")


def growth_from_v2_status(reply: Any) -> Growth | None:
    """The GCS's ``GetClusterStatusReply`` -> Growth; None when no v2 autoscaler has reported."""
    if not reply.HasField("autoscaling_state"):
        return None
    state = reply.autoscaling_state
    types = {node.ray_node_type_name for node in reply.cluster_resource_state.node_states if node.ray_node_type_name}
    types |= {item.ray_node_type_name for item in [*state.pending_instance_requests, *state.pending_instances]
              if item.ray_node_type_name}
    return _growth(types, "Ray's autoscaler (v2)")


def _growth(types: set[str], who: str) -> Growth:
    launched = sorted(name for name in types if not READONLY_NODE_TYPE.match(name))
    if launched:
        return Growth(True, f"{who} (node types it runs now: {', '.join(launched)})")
    return Growth(False, f"{who} runs read-only: it only mirrors the nodes there are (no autoscaling config, "
                         "as for a cluster started with `ray start`)")


def _v1_report() -> dict[str, Any] | None:
    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_get

    data = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
    return json.loads(data) if data else None


def _v2_reply() -> Any:
    import ray
    from ray._raylet import GcsClient
    from ray.core.generated.autoscaler_pb2 import GetClusterStatusReply

    reply = GetClusterStatusReply()
    reply.ParseFromString(GcsClient(address=ray.get_runtime_context().gcs_address).get_cluster_status(timeout_s=10))
    return reply


def cluster_growth(embedded: bool, report_wait_s: float = 30.0) -> Growth:
    """Whether the connected cluster can add nodes (see the module's docstring)."""
    if embedded:
        return Growth(False, "the job's own embedded Ray has no autoscaler")
    deadline = time.monotonic() + report_wait_s
    while True:
        for read, parse in ((_v1_report, growth_from_v1_report), (_v2_reply, growth_from_v2_status)):
            try:
                growth = parse(read())
            except Exception as error:  # noqa: BLE001 - an older or newer Ray: that report is not there
                log.debug("autoscaler report unreadable: %s", error)
                growth = None
            if growth is not None:
                return growth
        if time.monotonic() >= deadline:
            return Growth(False, f"no autoscaler reported to the cluster within {report_wait_s:g} s")
        time.sleep(0.5)


# ---------------------------------------------------------------- the check


def check_resources(demands: Iterable[Demand], embedded: bool, report_wait_s: float = 30.0) -> None:
    """Raise ClusterResourcesError for workers this cluster cannot hold and cannot grow to hold;
    on a cluster that can grow, log one line that says what the workers will wait for."""
    demands = list(demands)
    if not demands:
        return
    nodes = live_nodes()
    problems = unmet(demands, nodes)
    if not problems:
        return
    growth = cluster_growth(embedded, report_wait_s)
    if growth.can_grow:
        log.info("waiting for %s to add nodes for: %s (the cluster has %s)", growth.how, "; ".join(problems),
                 describe_cluster(nodes))
        return
    raise ClusterResourcesError("\n".join([*problems, f"this Ray cluster has {describe_cluster(nodes)}; "
                                                     f"it cannot grow: {growth.how}"]))
