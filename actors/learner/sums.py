"""Named additive sums: what a step's metrics are made of before they are divided.

Every micro-batch adds its sums (tokens, token-weighted KL, pairs, ...), every rank adds its own,
and the step's metrics are ratios of the totals; so metrics are exact whatever the micro-batch size
or the number of ranks. A name never added reads 0.
"""

from __future__ import annotations

from collections.abc import Mapping


class Sums(dict[str, float]):
    def __missing__(self, name: str) -> float:
        return 0.0

    def add(self, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self[name] = self.get(name, 0.0) + float(value)


def all_reduce(*parts: Sums) -> None:
    """Sum every part over all ranks, in place: one collective (every rank calls it, with the same
    names in each part)."""
    import torch
    import torch.distributed as dist

    names = [sorted(part) for part in parts]
    flat = torch.tensor([part[name] for part, keys in zip(parts, names) for name in keys], dtype=torch.float64)
    if not flat.numel():
        return
    dist.all_reduce(flat)
    values = iter(flat.tolist())
    for part, keys in zip(parts, names):
        for name in keys:
            part[name] = next(values)
