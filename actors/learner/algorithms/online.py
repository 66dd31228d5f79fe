"""The online algorithms' configs as one discriminated union, told apart by ``name``: the online
job's ``algorithm`` (``qvr grpo``). A new online algorithm is one member here; a section that names
none is the first's (GRPO)."""

from __future__ import annotations

from actors.config import tagged_union
from actors.learner.algorithms.grpo import GrpoConfig

OnlineAlgorithmConfig = tagged_union(GrpoConfig)
