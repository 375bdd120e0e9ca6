"""llama-cpp-python behind one module: every call into its C API or private attributes is here.

The rest of the package uses ``Llama``'s public methods (tokenize, eval, generate, n_ctx, reset,
embed) on the object :func:`load` returns, and calls this module for everything else: llama.cpp's
C functions (``llama_cpp.llama_*``), its enum constants, and the private ``Llama._model`` /
``Llama._ctx`` wrappers. When a llama-cpp-python release changes one of them, this is the file
to change, and :data:`TESTED_RANGE` is the line to move.

``llama_cpp`` is imported on the first call, never at import time (``dsv2 --help`` does not load
it), and that first call checks the installed version against :data:`TESTED_RANGE`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError
from .kvcache import CACHE_TYPES

if TYPE_CHECKING:
    from llama_cpp import Llama

# [lowest, first refused). The suite runs on 0.3.36 (scripts/install-llama-cpp.sh pins it).
# 0.3.17 is the first release that sets llama.cpp's flash_attn_type from Llama(flash_attn=...)
# (engines/llamacpp.resolve_flash_attn relies on it; 0.3.16 bundles an August 2025 llama.cpp):
# every name this module calls is present in the sources of 0.3.17 through 0.3.36. A minor
# release (0.4) may rename them, so it is refused until tested.
TESTED_RANGE = ("0.3.17", "0.4")
REQUIREMENT = f"llama-cpp-python>={TESTED_RANGE[0]},<{TESTED_RANGE[1]}"  # pyproject.toml says the same


def _release(version: str) -> tuple[int, ...]:
    """The leading dotted numbers of a version, trailing zeros dropped: "0.4.0rc1" -> (0, 4)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    parts = [int(p) for p in match.group(0).split(".")] if match else [0]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def check_version(version: str) -> None:
    """ModelError (exit 4) with the install command when ``version`` is outside :data:`TESTED_RANGE`."""
    low, high = TESTED_RANGE
    if not _release(low) <= _release(version) < _release(high):
        raise ModelError(
            f"llama-cpp-python {version} is outside the tested range {low}..{high}: pip install '{REQUIREMENT}'"
        )


# llama.cpp built with OpenMP (the Linux default, and scripts/install-llama-cpp.sh's build) makes
# its threads wait for each other after every operation by spinning. On cores shared with other
# work a spinning thread holds the core its partner needs. bench/threads.py, 2 cores, 2 threads,
# SmolLM2-135M, 2026-11-30: with one busy process alongside, generation 34 tok/s spinning vs 54
# passive (prompt evaluation 103 vs 115); under other jobs at load ~3.5, 11 vs 41 (49 vs 60). On
# the idle machine passive waits cost this 135M model's generation 23% (116 -> 89 tok/s, about
# 2.6 ms per token, less in proportion for bigger models) and prompt evaluation 0-9%. libgomp
# reads the variable once, when llama.cpp's library loads: hence here, before the import. A value
# the user set is kept.
OMP_WAIT_POLICY = "PASSIVE"


@functools.cache
def _lib() -> Any:
    """The ``llama_cpp`` module, imported and version-checked once."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(f"llama-cpp-python is not installed: pip install '{REQUIREMENT}'") from exc
    check_version(str(getattr(llama_cpp, "__version__", "unknown")))
    return llama_cpp


# --- llama.cpp's log ---------------------------------------------------------------------------
#
# llama-cpp-python forwards llama.cpp's log to stderr and filters by its Python logger's level,
# which Llama(verbose=False) sets to ERROR; llama.cpp still reports harmless conditions at that
# level (e.g. "n_ctx_seq (512) > n_ctx_train (0)" for a vocabulary-only load). dsv2 installs its
# own callback, which drops everything unless verbose.

_log = {"verbose": False}
_log_callback: Any = None  # kept referenced: llama.cpp holds a raw pointer to it


def configure_log(verbose: bool) -> None:
    """llama.cpp's own log: to stderr with ``verbose``, else dropped. Process-wide (llama.cpp's is)."""
    global _log_callback
    lib = _lib()
    _log["verbose"] = verbose
    if _log_callback is None:

        @lib.llama_log_callback  # type: ignore[untyped-decorator]  # ctypes CFUNCTYPE
        def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            if _log["verbose"]:
                sys.stderr.write(text.decode("utf-8", errors="replace"))

        _log_callback = callback
        lib.llama_log_set(_log_callback, ctypes.c_void_p(0))


# --- loading ------------------------------------------------------------------------------------


def load(path: Path, *, verbose: bool = False, **params: Any) -> Llama:
    """``Llama(path, verbose=verbose, **params)`` with dsv2's log rule (:func:`configure_log`).
    llama-cpp-python's own errors (ValueError, RuntimeError, OSError) pass through: the caller
    knows what was being loaded and says so."""
    configure_log(verbose)
    llama: Llama = _lib().Llama(str(path), verbose=verbose, **params)
    return llama


def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can offload to a GPU (loads the library, not a model)."""
    return bool(_lib().llama_supports_gpu_offload())


def default_gpu_layers(gpu_layers: int | None) -> int:
    """``--gpu-layers`` as given, else every layer where the build can offload and none where not."""
    if gpu_layers is not None:
        return gpu_layers
    return -1 if supports_gpu_offload() else 0


def cache_type_ids() -> dict[str, int]:
    """KV cache type names dsv2 accepts (kvcache.CACHE_TYPES) -> llama.cpp's ggml_type values
    (``Llama(type_k=...)``)."""
    lib = _lib()
    return {name: int(getattr(lib, f"GGML_TYPE_{name.upper()}")) for name in CACHE_TYPES}


def split_mode_ids() -> dict[str, int]:
    """Multi-GPU split names -> llama.cpp's llama_split_mode values (``Llama(split_mode=...)``)."""
    lib = _lib()
    return {"none": lib.LLAMA_SPLIT_MODE_NONE, "layer": lib.LLAMA_SPLIT_MODE_LAYER, "row": lib.LLAMA_SPLIT_MODE_ROW}


def max_devices() -> int:
    """How many devices this llama.cpp build can split a model over (``tensor_split``'s length)."""
    return int(_lib().LLAMA_MAX_DEVICES)


# --- the vocabulary -----------------------------------------------------------------------------


def _vocab(llm: Llama) -> Any:
    return llm._model.vocab  # llama_cpp's LlamaModel wraps the llama_vocab pointer


def tokenize(llm: Llama, data: bytes) -> tuple[Any, int]:
    """(buffer, count): ``data`` tokenized as plain text (no BOS, no special tokens) into a buffer
    sized for the worst case, so a long text is tokenized once (``Llama.tokenize`` sizes its
    buffer by the training context and tokenizes twice when the text is longer). ctypes releases
    the GIL for the call, so threads count in parallel."""
    lib = _lib()
    vocab = _vocab(llm)
    capacity = len(data) + 16  # every token covers at least one byte, plus BOS/EOS/space prefix
    while True:
        buf = (lib.llama_token * capacity)()
        n = int(lib.llama_tokenize(vocab, data, len(data), buf, capacity, False, False))
        if n >= 0:
            return buf, n
        if -n <= capacity:
            raise ModelError(f"llama_tokenize failed ({n}) on {len(data)} bytes")
        capacity = -n


def is_byte_level_bpe(llm: Llama) -> bool:
    """Whether the vocabulary is byte-level BPE (GPT-2 style), as opposed to SentencePiece etc."""
    lib = _lib()
    return bool(lib.llama_vocab_type(_vocab(llm)) == lib.LLAMA_VOCAB_TYPE_BPE)


def adds_bos(llm: Llama) -> bool:
    """Whether the vocabulary asks for a BOS token at the start of a sequence."""
    return bool(llm._model.add_bos_token())


def token_text(llm: Llama, token: int) -> str:
    """The vocabulary's text of one token (for a control token, its name, e.g. ``<|im_end|>``)."""
    return str(llm._model.token_get_text(token))


def special_tokens(llm: Llama) -> dict[str, int]:
    """Text -> id of every control / user-defined token (what ``special=True`` would match)."""
    lib = _lib()
    mask = lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_USER_DEFINED
    model = llm._model
    found: dict[str, int] = {}
    for token in range(model.n_vocab()):
        if model.token_get_attr(token) & mask:
            text = model.token_get_text(token)
            if text:
                found.setdefault(text, token)
    return found


def token_piece(llm: Llama, token: int) -> bytes:
    """The bytes of one generated token (llama_cpp's own token_to_piece returns a NUL-padded
    32-byte buffer)."""
    lib = _lib()
    vocab = _vocab(llm)
    buf = ctypes.create_string_buffer(64)
    n = lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    if n < 0:  # buffer too small: -n is the size needed
        buf = ctypes.create_string_buffer(-n)
        n = lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    return buf.raw[:n]


def is_end_of_generation(llm: Llama, token: int) -> bool:
    """Whether ``token`` ends a turn (EOS, EOT, <|im_end|> ...), as llama.cpp's vocabulary says."""
    return bool(_lib().llama_vocab_is_eog(_vocab(llm), token))


# --- the KV cache and saved states --------------------------------------------------------------


def keep_prefix(llm: Llama, n: int) -> None:
    """Keep the first ``n`` evaluated tokens in the KV cache and drop the rest; the next
    ``eval`` continues after them."""
    llm._ctx.kv_cache_seq_rm(-1, n, -1)
    llm.n_tokens = n


def clear_kv_cache(llm: Llama) -> None:
    """Empty the KV cache and forget every evaluated token."""
    llm.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves reset() unannotated
    llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]  # unannotated in llama_cpp


def save_state(llm: Llama, path: Path, ids: list[int]) -> bool:
    """Write the KV cache holding exactly ``ids`` to ``path`` (llama_state_save_file); False when
    llama.cpp could not (a full disk, say)."""
    lib = _lib()
    tokens = (lib.llama_token * len(ids))(*ids)
    return bool(lib.llama_state_save_file(llm.ctx, str(path).encode(), tokens, len(ids)))


def load_state(llm: Llama, path: Path) -> list[int] | None:
    """Load a state file written by :func:`save_state` into the KV cache; the token ids it holds,
    or None when llama.cpp refused it (another model or context size, a damaged file)."""
    lib = _lib()
    n_ctx = llm.n_ctx()
    tokens = (lib.llama_token * n_ctx)()
    count = ctypes.c_size_t(0)
    if not lib.llama_state_load_file(llm.ctx, str(path).encode(), tokens, n_ctx, ctypes.byref(count)):
        return None
    return list(tokens[: count.value])


def greedy_token(llm: Llama) -> int:
    """The most likely next token after the last ``eval`` (argmax of its logits)."""
    import numpy as np

    logits = np.ctypeslib.as_array(_lib().llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
    return int(logits.argmax())


# --- grammars -----------------------------------------------------------------------------------


def json_schema_grammar(schema_json: str) -> Any:
    """A llama.cpp grammar (``LlamaGrammar``) admitting only JSON that matches the schema."""
    _lib()
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


def json_schema_gbnf(schema_json: str) -> str:
    """The GBNF text llama.cpp would build for the schema (pure Python, no model)."""
    _lib()
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return str(json_schema_to_gbnf(schema_json))


# --- embeddings ---------------------------------------------------------------------------------


def embedding_limits(llm: Llama) -> tuple[int, int]:
    """(tokens, sequences) one :func:`embed_batch` call may hold: ``n_batch`` tokens (with
    ``n_ubatch = n_batch``, as encoders require) and llama.cpp's sequence limit for the context."""
    return int(llm.n_batch), int(llm.context_params.n_seq_max)


def ends_with_separator(llm: Llama) -> bool:
    """Whether tokenizing with special tokens appends a closing one ([SEP] for BERT, EOS for some
    models): a sequence cut to a length must keep it last."""
    vocab = _vocab(llm)
    lib = _lib()
    return bool(lib.llama_vocab_get_add_eos(vocab) or lib.llama_vocab_get_add_sep(vocab))


def embed_batch(llm: Llama, sequences: list[list[int]]) -> list[list[float]]:
    """One pooled, unit-length vector per token sequence, all sequences in ONE llama.cpp batch
    (one ``llama_decode``): what ``Llama.embed`` does per batch, without tokenizing the texts
    again. The sequences must fit :func:`embedding_limits` (an encoder aborts the process when a
    batch holds more tokens than ``n_ubatch``); none may be empty (llama.cpp returns NULL)."""
    import numpy as np

    lib = _lib()
    n_tokens, n_seqs = embedding_limits(llm)
    total = sum(len(s) for s in sequences)
    if total > n_tokens or len(sequences) > n_seqs or any(not s for s in sequences):
        raise ValueError(f"batch of {len(sequences)} sequences, {total} tokens exceeds {n_seqs} / {n_tokens}")
    n_embd = llm.n_embd()
    batch = llm._batch  # llama_cpp's LlamaBatch, sized n_batch tokens
    batch.reset()  # type: ignore[no-untyped-call]  # unannotated in llama_cpp
    for seq_id, ids in enumerate(sequences):
        batch.add_sequence(ids, seq_id, True)  # every token an output: pooling reads them all
    llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]  # unannotated in llama_cpp
    try:
        llm._ctx.decode(batch)
    finally:
        batch.reset()  # type: ignore[no-untyped-call]
    vectors = np.empty((len(sequences), n_embd), dtype=np.float64)
    for seq_id in range(len(sequences)):
        pointer = lib.llama_get_embeddings_seq(llm.ctx, seq_id)
        if not pointer:
            raise RuntimeError("llama.cpp returned no pooled embedding (a model without pooling?)")
        vectors[seq_id] = np.ctypeslib.as_array(pointer, shape=(n_embd,))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms == 0.0, 1.0, norms)
    llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
    rows: list[list[float]] = vectors.tolist()
    return rows
