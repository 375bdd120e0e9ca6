"""Tiny random-weight GGUFs of architecture ``deepseek2``, written in about a second.

The real DeepSeek-V2 weights are 10-130 GB; these files keep everything else real: the
``deepseek2`` graph in llama.cpp (MLA attention, routed + shared experts, a leading dense
layer, YaRN metadata), the DeepSeek vocabulary (copied from the 4 MB vocab GGUF that
llama.cpp ships) and DeepSeek-V2-Chat's chat template. Output is noise; architecture,
tokenizer, template and budgeting are the real paths.

Three shapes, each seen loading and generating with DeepSeek-V2-Chat's template through
llama-cpp-python 0.3.36 (files written with gguf 0.19):
- ``lite``: V2-Lite-shaped: no query compression (q_lora_rank 0), MLA metadata;
- ``v2``: V2-shaped: query compression (q_lora_rank > 0), MLA metadata;
- ``old``: V2-Lite-shaped but converted the pre-April-2025 way: no ``key_length_mla``, one
  K and V head per attention head, an unsplit ``attn_kv_b`` tensor.

Reading the vocabulary with ``gguf.GGUFReader`` takes 5-15 s here, so its string arrays are
walked directly (well under a second) and everything is written with ``gguf.GGUFWriter``.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

# DeepSeek-V2-Chat's tokenizer_config.json chat_template (Hugging Face).
DEEPSEEK_V2_CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\n\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

TRAINED_CONTEXT = 163840  # what both HF configs (and so the GGUFs) state


@dataclass(frozen=True)
class Shape:
    """Dimensions of a tiny DeepSeek-V2. Head sizes are multiples of 32 so q8_0/q4_0 caches divide them."""

    name: str
    q_lora_rank: int  # 0: V2-Lite (no query compression)
    mla: bool = True  # False: a GGUF converted before llama.cpp's MLA format
    n_layer: int = 3
    n_embd: int = 32
    n_head: int = 4
    kv_lora_rank: int = 64
    qk_nope: int = 32
    qk_rope: int = 32
    v_head: int = 32
    n_ff: int = 64  # the leading dense layer
    n_ff_exp: int = 32
    n_expert: int = 8
    n_expert_used: int = 2
    n_expert_shared: int = 2
    n_dense_lead: int = 1

    @property
    def kv_bytes_per_token_f16(self) -> int:
        """What llama.cpp allocates per token at f16 (MLA: K only; legacy: K and V per head)."""
        if self.mla:
            return self.n_layer * (self.kv_lora_rank + self.qk_rope) * 2
        return self.n_layer * self.n_head * (self.qk_nope + self.qk_rope + self.v_head) * 2


SHAPES = {
    "lite": Shape("lite", q_lora_rank=0),
    "v2": Shape("v2", q_lora_rank=32),
    "old": Shape("old", q_lora_rank=0, mla=False),
}


# --- the vocabulary, copied from llama.cpp's ggml-vocab-deepseek-llm.gguf ---------------------------


def read_tokenizer_keys(vocab_path: Path) -> dict[str, tuple[Any, gguf.GGUFValueType, gguf.GGUFValueType | None]]:
    """Every ``tokenizer.*`` key of a GGUF: value, type and (for arrays) element type."""
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    out: dict[str, tuple[Any, gguf.GGUFValueType, gguf.GGUFValueType | None]] = {}
    with vocab_path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        pos = 8  # magic, version

        def take(fmt: str) -> Any:
            nonlocal pos
            (value,) = struct.unpack_from("<" + fmt, buf, pos)
            pos += struct.calcsize("<" + fmt)
            return value

        def string() -> bytes:
            nonlocal pos
            length = take("Q")
            raw = bytes(buf[pos : pos + length])
            pos += length
            return raw

        take("Q")  # tensor count
        for _ in range(take("Q")):
            key = string().decode()
            vtype = take("I")
            if vtype == 9:
                item_type, length = take("I"), take("Q")
                if item_type == 8:
                    value: Any = [string() for _ in range(length)]
                else:
                    fmt = scalar[item_type]
                    value = list(struct.unpack_from(f"<{length}{fmt}", buf, pos))
                    pos += struct.calcsize(f"<{length}{fmt}")
                entry = (value, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType(item_type))
            elif vtype == 8:
                entry = (string().decode(), gguf.GGUFValueType.STRING, None)
            else:
                entry = (take(scalar[vtype]), gguf.GGUFValueType(vtype), None)
            if key.startswith("tokenizer."):
                out[key] = entry
    return out


# --- the model ------------------------------------------------------------------------------------------


def write_deepseek2(
    path: Path,
    shape: Shape,
    tokenizer_keys: dict[str, tuple[Any, gguf.GGUFValueType, gguf.GGUFValueType | None]],
    *,
    seed: int = 0,
    chat_template: str | None = DEEPSEEK_V2_CHAT_TEMPLATE,
    split_max_tensors: int = 0,
) -> Path:
    """Write a random-weight deepseek2 GGUF of ``shape`` (tensor names and shapes as llama.cpp loads them)."""
    rng = np.random.default_rng(seed)
    n_vocab = len(tokenizer_keys["tokenizer.ggml.tokens"][0])
    s = shape
    # split_max_tensors > 0: a split GGUF (path-00001-of-0000N.gguf ...), as llama.cpp's gguf-split writes
    w = gguf.GGUFWriter(str(path), "deepseek2", split_max_tensors=split_max_tensors)
    w.add_name(f"tiny-deepseek2-{s.name}")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_vocab_size(n_vocab)
    w.add_context_length(TRAINED_CONTEXT)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(s.qk_rope)
    w.add_rope_freq_base(10000.0)
    w.add_leading_dense_block_count(s.n_dense_lead)
    w.add_q_lora_rank(s.q_lora_rank)  # explicit even when 0: only 26/27-layer files may omit it
    w.add_kv_lora_rank(s.kv_lora_rank)
    if s.mla:  # current converter: one latent "head" holds the compressed K (V is a view of it)
        w.add_head_count_kv(1)
        w.add_key_length(s.kv_lora_rank + s.qk_rope)
        w.add_value_length(s.kv_lora_rank)
        w.add_key_length_mla(s.qk_nope + s.qk_rope)
        w.add_value_length_mla(s.v_head)
    else:  # pre-MLA converter: full K and V per head
        w.add_head_count_kv(s.n_head)
        w.add_key_length(s.qk_nope + s.qk_rope)
        w.add_value_length(s.v_head)
    w.add_expert_feed_forward_length(s.n_ff_exp)
    w.add_expert_count(s.n_expert)
    w.add_expert_used_count(s.n_expert_used)
    w.add_expert_shared_count(s.n_expert_shared)
    w.add_expert_weights_scale(1.0)
    # YaRN as DeepSeek-V2 ships it: factor 40 over 4k, mscale_all_dim 0.707 stored as 0.1 * 0.707.
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(40.0)
    w.add_rope_scaling_orig_ctx_len(4096)
    w.add_rope_scaling_yarn_log_mul(0.0707)
    for key, (value, vtype, sub_type) in tokenizer_keys.items():
        if key == "tokenizer.chat_template":
            continue
        w.add_key_value(key, value, vtype, sub_type=sub_type)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    def tensor(name: str, *ne: int) -> None:
        """``ne`` in ggml order (fastest dimension first), as llama.cpp's loader states shapes."""
        shape_np = tuple(reversed(ne))
        if len(ne) == 1 or name.endswith("ffn_gate_inp.weight"):  # norms and the router stay F32
            w.add_tensor(name, np.ones(shape_np, np.float32) if len(ne) == 1 else _rand(rng, shape_np, np.float32))
        else:
            w.add_tensor(name, _rand(rng, shape_np, np.float16))

    k_mla = s.qk_nope + s.qk_rope
    tensor("token_embd.weight", s.n_embd, n_vocab)  # output.weight omitted: tied to the embeddings
    tensor("output_norm.weight", s.n_embd)
    for i in range(s.n_layer):
        b = f"blk.{i}."
        tensor(b + "attn_norm.weight", s.n_embd)
        if s.q_lora_rank:
            tensor(b + "attn_q_a_norm.weight", s.q_lora_rank)
            tensor(b + "attn_q_a.weight", s.n_embd, s.q_lora_rank)
            tensor(b + "attn_q_b.weight", s.q_lora_rank, s.n_head * k_mla)
        else:
            tensor(b + "attn_q.weight", s.n_embd, s.n_head * k_mla)
        tensor(b + "attn_kv_a_norm.weight", s.kv_lora_rank)
        tensor(b + "attn_kv_a_mqa.weight", s.n_embd, s.kv_lora_rank + s.qk_rope)
        if s.mla:
            tensor(b + "attn_k_b.weight", s.qk_nope, s.kv_lora_rank, s.n_head)
            tensor(b + "attn_v_b.weight", s.kv_lora_rank, s.v_head, s.n_head)
        else:
            tensor(b + "attn_kv_b.weight", s.kv_lora_rank, s.n_head * (s.qk_nope + s.v_head))
        tensor(b + "attn_output.weight", s.n_head * s.v_head, s.n_embd)
        tensor(b + "ffn_norm.weight", s.n_embd)
        if i < s.n_dense_lead:
            tensor(b + "ffn_gate.weight", s.n_embd, s.n_ff)
            tensor(b + "ffn_up.weight", s.n_embd, s.n_ff)
            tensor(b + "ffn_down.weight", s.n_ff, s.n_embd)
        else:
            tensor(b + "ffn_gate_inp.weight", s.n_embd, s.n_expert)
            tensor(b + "ffn_gate_exps.weight", s.n_embd, s.n_ff_exp, s.n_expert)
            tensor(b + "ffn_up_exps.weight", s.n_embd, s.n_ff_exp, s.n_expert)
            tensor(b + "ffn_down_exps.weight", s.n_ff_exp, s.n_embd, s.n_expert)
            shared = s.n_ff_exp * s.n_expert_shared
            tensor(b + "ffn_gate_shexp.weight", s.n_embd, shared)
            tensor(b + "ffn_up_shexp.weight", s.n_embd, shared)
            tensor(b + "ffn_down_shexp.weight", shared, s.n_embd)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * 0.05).astype(dtype)


def build_all(directory: Path, vocab_path: Path) -> dict[str, Path]:
    """All three shapes in ``directory``: {"lite": path, "v2": path, "old": path}."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = read_tokenizer_keys(vocab_path)
    return {
        name: write_deepseek2(directory / f"tiny-deepseek2-{name}.gguf", shape, keys) for name, shape in SHAPES.items()
    }
