"""A tiny random Qwen2 model and a locally trained tokenizer, for tests and benchmarks.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a few Qiskit-like
lines, the model is a random-init ``Qwen2ForCausalLM`` sized for CPU (head_dim 64, the
smallest vLLM's CPU attention accepts). Both are saved to one directory, which then loads like
any local checkpoint (``from_pretrained(path)``, ``vllm.LLM(model=path)``).
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CORPUS = [
    "from qiskit import QuantumCircuit, transpile",
    "from qiskit_aer import AerSimulator",
    "from qiskit.quantum_info import Statevector, Operator",
    "qc = QuantumCircuit(2)",
    "qc.h(0)",
    "qc.cx(0, 1)",
    "qc.measure_all()",
    "for q in range(n - 1):\n    qc.cx(q, q + 1)",
    "def bell_state() -> QuantumCircuit:\n    \"\"\"Return a Bell state circuit.\"\"\"",
    "def ghz(n: int) -> QuantumCircuit:\n    qc = QuantumCircuit(n)\n    qc.h(0)\n    return qc",
    "counts = AerSimulator().run(transpile(qc), shots=1024).result().get_counts()",
    "state = Statevector.from_instruction(qc)",
    "qc.rz(theta, 0)\nqc.ry(phi, 1)\nqc.swap(0, 1)",
    "Write a function that prepares a GHZ state on n qubits.",
    "Return the circuit that teleports qubit 0 to qubit 2.",
    "```python\nimport numpy as np\n```",
]

# Small enough to build in about a second, large enough to look like a model to both engines.
MODEL_SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 1, "head_dim": 64, "max_position_embeddings": 1024, "tie_word_embeddings": True}


def build_tokenizer(vocab_size: int = 512, extra_corpus: list[str] | None = None, split_digits: bool = False):
    """A byte-level BPE tokenizer trained on :data:`CORPUS` (plus ``extra_corpus``), with a chat
    template; ``split_digits``: every digit its own token, as Qwen2's tokenizer splits numbers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                               if split_digits else byte_level)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator((CORPUS + list(extra_corpus or [])) * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHAT_TEMPLATE, model_max_length=MODEL_SHAPE["max_position_embeddings"])


def build_model(tokenizer, seed: int = 0, layers: int | None = None, hidden_size: int | None = None,
                init_scale: float = 4.0):
    """A random-init Qwen2 causal LM over ``tokenizer``'s vocabulary, in float32: :data:`MODEL_SHAPE`,
    or ``layers`` and ``hidden_size`` (heads of 64 dimensions, half as many key/value heads, an MLP
    twice as wide). Its weight matrices are the standard initialisation times ``init_scale``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    shape = dict(MODEL_SHAPE)
    if layers:
        shape["num_hidden_layers"] = layers
    if hidden_size:
        heads = max(1, hidden_size // shape["head_dim"])
        shape.update(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_attention_heads=heads,
                     num_key_value_heads=max(1, heads // 2))
    config = Qwen2Config(vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, torch_dtype="float32", **shape)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    # Random init gives near-uniform next-token distributions; larger weights (the default 4x) make
    # samples, and so the tests, tell one set of weights from another.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(init_scale)
    return model.eval()


def save_tiny_model(path: str | Path, seed: int = 0) -> Path:
    """Build the tokenizer and a model with ``seed`` and save both to ``path``; returns it."""
    path = Path(path)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed=seed)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def random_state_dict(path: str | Path, seed: int) -> dict:
    """The state dict of a fresh random model with ``seed`` shaped like the one saved at ``path``
    (``lm_head.weight`` included: vLLM needs it for tied embeddings)."""
    from transformers import AutoTokenizer

    return build_model(AutoTokenizer.from_pretrained(path), seed=seed).state_dict()
