"""Read a GGUF file's header (metadata and tensor table) without touching the weights.

Only the header is parsed, through ``mmap``: arrays are skipped by arithmetic except
string arrays, whose lengths must be walked (the vocabulary). Reading the header of a
100 MB model takes milliseconds, which is what ``dsv2 models`` and ``dsv2 plan`` need.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelError

MAGIC = b"GGUF"

# Split GGUFs (llama.cpp's gguf-split): NAME-00001-of-00005.gguf, loaded through the first part.
SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)

# Architectures llama.cpp runs as encoders (embeddings), not for generation.
EMBEDDING_ARCHITECTURES = frozenset(
    ("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "neo-bert", "modern-bert", "t5encoder")
)


class TruncatedHeader(ModelError):
    """The bytes end inside the header: read more (a header fetched with a range request)."""


# GGUF value types -> struct format (scalars only). These three tables follow the ``gguf`` package's
# GGUFValueType, LlamaFileType and GGMLQuantizationType: tests/test_ggufmeta.py compares them.
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

# llama_ftype values (llama.h) -> the names users know.
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}

# ggml_type values -> names, for the tensor-type histogram when general.file_type is absent.
TENSOR_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    16: "IQ2_XXS",
    17: "IQ2_XS",
    18: "IQ3_XXS",
    19: "IQ1_S",
    20: "IQ4_NL",
    21: "IQ3_S",
    22: "IQ2_S",
    23: "IQ4_XS",
    24: "I8",
    25: "I16",
    26: "I32",
    27: "I64",
    28: "F64",
    29: "IQ1_M",
    30: "BF16",
    34: "TQ1_0",
    35: "TQ2_0",
    39: "MXFP4",
    40: "NVFP4",
    41: "Q1_0",
}


@dataclass(frozen=True)
class ArrayInfo:
    """A metadata array: its element type and length (contents are not kept)."""

    item_type: int
    length: int


@dataclass
class GGUFInfo:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_types: dict[str, int] = field(default_factory=dict)  # type name -> tensor count
    tensor_count: int = 0
    header_size: int = 0  # bytes before tensor data alignment: what a header-only read touches
    size: int | None = None  # total bytes when known without the file (a header read over HTTP)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}")

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value is not None else None

    @property
    def context_length(self) -> int | None:
        value = self.arch_value("context_length")
        return int(value) if value is not None else None

    @property
    def block_count(self) -> int | None:
        value = self.arch_value("block_count")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def vocab_size(self) -> int | None:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        return tokens.length if isinstance(tokens, ArrayInfo) else None

    @property
    def quantization(self) -> str:
        file_type = self.metadata.get("general.file_type")
        if isinstance(file_type, int) and file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        if self.tensor_types:  # most common non-F32 tensor type
            ranked = sorted(self.tensor_types.items(), key=lambda kv: (kv[0] == "F32", -kv[1]))
            return ranked[0][0]
        return "unknown"

    @property
    def split_count(self) -> int:
        value = self.metadata.get("split.count")
        return int(value) if isinstance(value, int) and value > 1 else 1

    @property
    def is_embedding_model(self) -> bool:
        return self.architecture in EMBEDDING_ARCHITECTURES

    @property
    def file_size(self) -> int:
        """Bytes of weights: the whole model, all parts of a split GGUF (found beside the first)."""
        if self.size is not None:
            return self.size
        total = self.path.stat().st_size
        match = SPLIT_NAME.match(self.path.name)
        if self.split_count > 1 and match is not None and int(match["part"]) == 1:
            count = int(match["count"])
            for part in range(2, count + 1):
                sibling = self.path.with_name(f"{match['stem']}-{part:05d}-of-{count:05d}.gguf")
                if sibling.is_file():
                    total += sibling.stat().st_size
        return total


class _Reader:
    def __init__(self, buf: mmap.mmap | bytes, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise TruncatedHeader(f"{self.path}: truncated GGUF header")
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("Q")
        end = self.pos + length
        if end > len(self.buf):
            raise TruncatedHeader(f"{self.path}: truncated GGUF header")
        raw = bytes(self.buf[self.pos : end])
        self.pos = end
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.pos += 8 + self.take_peek_len()

    def take_peek_len(self) -> int:
        if self.pos + 8 > len(self.buf):
            raise TruncatedHeader(f"{self.path}: truncated GGUF header")
        (length,) = struct.unpack_from("<Q", self.buf, self.pos)
        return int(length)

    def full_value(self, vtype: int) -> Any:
        """Like ``value``, but an array comes back with its contents; a string array's items as
        bytes, read in a tight loop (a vocabulary has ~100k of them)."""
        if vtype != _ARRAY:
            value = self.value(vtype)
            return value.encode() if isinstance(value, str) else value
        item_type, length = self.take("I"), self.take("Q")
        buf, pos = self.buf, self.pos
        if item_type == _STRING:
            items: list[Any] = []
            length_at = struct.Struct("<Q").unpack_from
            for _ in range(length):
                (size,) = length_at(buf, pos)
                items.append(buf[pos + 8 : pos + 8 + size])
                pos += 8 + size
        elif item_type in _SCALAR:
            fmt = f"<{length}{_SCALAR[item_type]}"
            items = list(struct.unpack_from(fmt, buf, pos))
            pos += struct.calcsize(fmt)
        else:
            raise ModelError(f"{self.path}: unsupported GGUF array type {item_type}")
        if pos > len(buf):
            raise TruncatedHeader(f"{self.path}: truncated GGUF header")
        self.pos = pos
        return items

    def value(self, vtype: int) -> Any:
        if vtype in _SCALAR:
            return self.take(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = self.take("I")
            length = self.take("Q")
            if item_type in _SCALAR:
                self.pos += struct.calcsize("<" + _SCALAR[item_type]) * length
            elif item_type == _STRING:
                for _ in range(length):
                    self.skip_string()
            else:  # nested arrays do not occur in practice; refuse rather than guess
                raise ModelError(f"{self.path}: unsupported GGUF array type {item_type}")
            if self.pos > len(self.buf):
                raise TruncatedHeader(f"{self.path}: truncated GGUF header")
            return ArrayInfo(item_type, length)
        raise ModelError(f"{self.path}: unknown GGUF value type {vtype}")


def read_metadata(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The values of ``keys`` in a GGUF's metadata, arrays with their contents (strings as raw
    bytes: a vocabulary's tokens and merges); stops after the last of them. For the token
    counter (bpe.py), which needs the vocabulary itself, not just its size."""
    try:
        with path.open("rb") as fh:
            if fh.read(4) != MAGIC:
                raise ModelError(f"{path}: not a GGUF file (bad magic bytes)")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                reader = _Reader(buf, path)
                reader.pos = 8  # magic, version
                reader.take("Q")  # tensor count
                found: dict[str, Any] = {}
                for _ in range(reader.take("Q")):
                    key = reader.string()
                    vtype = reader.take("I")
                    if key in keys:
                        found[key] = reader.full_value(vtype)
                        if len(found) == len(keys):
                            break
                    else:
                        reader.value(vtype)
                return found
    except (OSError, ValueError, struct.error) as exc:
        raise ModelError(f"{path}: cannot read GGUF header ({exc})") from exc


def read_gguf(path: str | Path) -> GGUFInfo:
    """Parse the GGUF header of ``path``; raise ModelError if it is not a readable GGUF."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not a GGUF model file")
    try:
        with path.open("rb") as fh:
            if fh.read(4) != MAGIC:
                raise ModelError(f"{path}: not a GGUF file (bad magic bytes)")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, path)
    except PermissionError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror})") from exc
    except (OSError, ValueError, struct.error) as exc:
        raise ModelError(f"{path}: cannot read GGUF header ({exc})") from exc


def parse_header(data: bytes, name: str, size: int) -> GGUFInfo:
    """Parse a GGUF header from its first bytes (an HTTP range request): ``name`` is what errors
    show, ``size`` the whole file's. TruncatedHeader when ``data`` ends inside the header."""
    path = Path(name)
    if data[:4] != MAGIC:
        if len(data) < 4:
            raise TruncatedHeader(f"{name}: truncated GGUF header")
        raise ModelError(f"{name}: not a GGUF file (bad magic bytes)")
    info = _parse(data, path)
    info.size = size
    return info


def _parse(buf: mmap.mmap | bytes, path: Path) -> GGUFInfo:
    reader = _Reader(buf, path)
    reader.pos = 4
    version = reader.take("I")
    if version < 2:
        raise ModelError(f"{path}: GGUF version {version} is too old; reconvert the model")
    tensor_count = reader.take("Q")
    kv_count = reader.take("Q")
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.string()
        metadata[key] = reader.value(reader.take("I"))
    tensor_types: dict[str, int] = {}
    for _ in range(tensor_count):
        reader.string()  # tensor name
        n_dims = reader.take("I")
        reader.pos += 8 * n_dims
        ttype = reader.take("I")
        reader.take("Q")  # offset
        name = TENSOR_TYPES.get(ttype, f"type{ttype}")
        tensor_types[name] = tensor_types.get(name, 0) + 1
    return GGUFInfo(path, version, metadata, tensor_types, tensor_count, reader.pos)
