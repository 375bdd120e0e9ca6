"""Convert a Hugging Face BERT sentence embedder (safetensors + vocab.txt) to a GGUF of arch ``bert``.

numpy only: no torch, no transformers. The tensor map is gguf-py's; the vocabulary rules follow
llama.cpp's ``BertModel`` converter in convert_hf_to_gguf.py, which imports torch (hence this
copy): WordPiece pieces become "phantom space" tokens, the special tokens stay as CONTROL,
``token_type_count`` must be written, ``position_ids`` and the pooler are dropped, and 1-D
tensors plus position/token-type tables are F32. all-MiniLM-L6-v2 converted this way embeds at
cosine >= 0.9999 to sentence-transformers on ordinary text.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError
from ..fsutil import replacing

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_DROPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def _pooling(model_dir: Path) -> int:
    import gguf

    config = model_dir / "1_Pooling" / "config.json"
    if config.is_file():
        pooling = json.loads(config.read_text())
        if pooling.get("pooling_mode_cls_token"):
            return int(gguf.PoolingType.CLS)
    return int(gguf.PoolingType.MEAN)


def convert_bert(model_dir: Path, out_path: Path, *, name: str = "bert", q8: bool = False) -> Path:
    """Write ``out_path`` atomically (temp file + rename). Raises ModelError on anything unexpected.

    ``q8``: store the matrices as Q8_0 instead of F16 (smaller, and faster on CPUs without
    native f16 arithmetic)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    try:
        config = json.loads((model_dir / "config.json").read_text())
        vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
        tensors = load_file(str(model_dir / "model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_dir}: cannot read the embedding model ({exc})") from exc
    if config.get("model_type") != "bert":
        raise ModelError(f"{model_dir}: model_type {config.get('model_type')!r} is not bert")
    lowercase = True
    tok_config = model_dir / "tokenizer_config.json"
    if tok_config.is_file():
        lowercase = bool(json.loads(tok_config.read_text()).get("do_lower_case", True))

    n_layers = int(config["num_hidden_layers"])
    tensor_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out_path) as tmp:
        writer = gguf.GGUFWriter(tmp, "bert")
        writer.add_name(name)
        writer.add_context_length(int(config["max_position_embeddings"]))
        writer.add_embedding_length(int(config["hidden_size"]))
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_block_count(n_layers)
        writer.add_head_count(int(config["num_attention_heads"]))
        writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
        writer.add_causal_attention(False)
        writer.add_pooling_type(gguf.PoolingType(_pooling(model_dir)))
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if q8 else gguf.LlamaFileType.MOSTLY_F16)

        token_types = []
        tokens = []
        for token in vocab:
            if token in SPECIAL_TOKENS:
                tokens.append(token)
                token_types.append(gguf.TokenType.CONTROL)
            elif token.startswith("##"):
                tokens.append(token[2:])
                token_types.append(gguf.TokenType.NORMAL)
            else:
                tokens.append("\u2581" + token)
                token_types.append(gguf.TokenType.NORMAL)
        writer.add_tokenizer_model("bert")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(token_types)
        writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
        writer.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)  # gguf 0.19 has no helper
        ids = {token: i for i, token in enumerate(vocab)}
        for token, add in (
            ("[CLS]", writer.add_bos_token_id),
            ("[SEP]", writer.add_eos_token_id),
            ("[UNK]", writer.add_unk_token_id),
            ("[SEP]", writer.add_sep_token_id),
            ("[PAD]", writer.add_pad_token_id),
            ("[MASK]", writer.add_mask_token_id),
        ):
            if token in ids:
                add(ids[token])

        for hf_name, array in tensors.items():
            if hf_name.startswith("bert."):
                hf_name = hf_name[5:]
            if hf_name in _DROPPED or hf_name.startswith("cls."):
                continue
            gguf_name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ModelError(f"{model_dir}: unexpected tensor {hf_name}")
            keep_f32 = array.ndim == 1 or gguf_name.startswith(("position_embd", "token_types"))
            if keep_f32:
                writer.add_tensor(gguf_name, array.astype(np.float32))
            elif q8 and array.shape[-1] % 32 == 0:
                quantized = gguf.quants.quantize(array.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
                writer.add_tensor(gguf_name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                writer.add_tensor(gguf_name, array.astype(np.float16))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out_path
