"""ggufmeta's type tables against the ``gguf`` package (llama.cpp's own gguf-py), name for name.

Exact on purpose: when a newer gguf adds a quantization (as NVFP4 and Q1_0 were added), these
fail until ggufmeta learns it, instead of ``dsv2 models`` showing "type40" for a real file.
"""

from __future__ import annotations

import gguf

from dsv2cli import ggufmeta


def test_value_types_match_gguf() -> None:
    packing = gguf.GGUFWriter._simple_value_packing  # the struct format gguf-py writes each scalar with
    assert {int(t): fmt for t, fmt in packing.items()} == ggufmeta._SCALAR
    assert ggufmeta._STRING == gguf.GGUFValueType.STRING
    assert ggufmeta._ARRAY == gguf.GGUFValueType.ARRAY
    assert {int(t) for t in gguf.GGUFValueType} == {*ggufmeta._SCALAR, ggufmeta._STRING, ggufmeta._ARRAY}


def test_tensor_types_match_gguf() -> None:
    assert {int(t): t.name for t in gguf.GGMLQuantizationType} == ggufmeta.TENSOR_TYPES


def test_file_types_match_gguf() -> None:
    # LlamaFileType names carry llama.h's MOSTLY_/ALL_ prefixes; GUESSED (1024) is a flag llama.cpp
    # ors in when it had to guess, not a type a file names.
    expected = {
        int(t): t.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        for t in gguf.LlamaFileType
        if t is not gguf.LlamaFileType.GUESSED
    }
    assert expected == ggufmeta.FILE_TYPES
