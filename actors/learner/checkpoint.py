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


def save(engine: Any, directory: str | Path, state: dict[str, Any], rank: int) -> None:
    """Collective: every rank calls it with its own local ``directory``; Ray Train merges them."""
    import numpy as np
    import torch

    directory = Path(directory)
    engine.save_checkpoint(str(directory), tag=TAG, client_state={"trainer_state": state})
    torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
               directory / f"rng_rank{rank}.pt")
    if rank == 0:
        (directory / TRAINER_STATE).write_text(json.dumps(state, indent=2))


def load(engine: Any, directory: str | Path, rank: int) -> dict[str, Any]:
    """Restore ``engine`` and this rank's RNG from ``directory``; returns the trainer state."""
    import numpy as np
    import torch

    directory = Path(directory)
    path, client_state = engine.load_checkpoint(str(directory), tag=TAG)
    if path is None:
        raise FileNotFoundError(f"no DeepSpeed checkpoint under {directory}")
    rng_file = directory / f"rng_rank{rank}.pt"
    if rng_file.exists():
        rng = torch.load(rng_file, weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
    return dict(client_state["trainer_state"])


def latest(root: str | Path) -> Path | None:
    """The checkpoint with the highest step under ``root`` (a run directory), or None."""
    best: tuple[int, Path] | None = None
    for state_file in Path(root).rglob(TRAINER_STATE):
        step = int(json.loads(state_file.read_text())["step"])
        if best is None or step > best[0]:
            best = (step, state_file.parent)
    return best[1] if best else None
