"""Learner checkpoints: DeepSpeed's own (model, optimizer, each rank's ZeRO partition), each
rank's RNG state and the trainer state (step = the data cursor), in one directory that Ray
Train stores and hands back on restart."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

TAG = "state"
TRAINER_STATE = "trainer_state.json"
HF_MODEL = "hf_model"
HF_ADAPTER = "hf_adapter"
RAY_TRAIN_SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's record of registered checkpoints


def save(engine: Any, directory: str | Path, state: dict[str, Any], rank: int) -> None:
    """Collective: every rank calls it with its own local ``directory``; Ray Train merges them."""
    import numpy as np
    import torch

    directory = Path(directory)
    engine.save_checkpoint(str(directory), tag=TAG)
    torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
               directory / f"rng_rank{rank}.pt")
    if rank == 0:
        (directory / TRAINER_STATE).write_text(json.dumps(state, indent=2))


def load(engine: Any, directory: str | Path, rank: int) -> dict[str, Any]:
    """Restore ``engine`` and this rank's RNG from ``directory``; returns the trainer state."""
    import numpy as np
    import torch

    directory = Path(directory)
    path, _ = engine.load_checkpoint(str(directory), tag=TAG)
    if path is None:
        raise FileNotFoundError(f"no DeepSpeed checkpoint under {directory}")
    rng_file = directory / f"rng_rank{rank}.pt"
    if rng_file.exists():
        rng = torch.load(rng_file, weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
    return json.loads((directory / TRAINER_STATE).read_text())


def latest(root: str | Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (a run directory), or None.

    Complete means Ray Train registered it after every rank had reported: its checkpoint
    manager's snapshot names it. A directory whose upload was cut short (the job killed while
    ranks were still reporting) is never chosen. Without a snapshot (checkpoints written outside
    Ray Train), the highest step wins. Of a run directory only its own ``checkpoints`` folder is
    searched: a run may hold another run's checkpoints (GRPO's bootstrapped tiny policy is an SFT
    run inside it), and those are never this run's."""
    root = Path(root)
    if (root / "checkpoints").is_dir():
        root = root / "checkpoints"
    registered = []
    for snapshot in root.rglob(RAY_TRAIN_SNAPSHOT):
        result = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
        if result.get("checkpoint_dir_name") and (snapshot.parent / result["checkpoint_dir_name"] / TRAINER_STATE).exists():
            registered.append(snapshot.parent / result["checkpoint_dir_name"])
    candidates = registered or [state.parent for state in root.rglob(TRAINER_STATE)]
    if not candidates:
        return None
    return max(candidates, key=lambda path: int(json.loads((path / TRAINER_STATE).read_text())["step"]))
