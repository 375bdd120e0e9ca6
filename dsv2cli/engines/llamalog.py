"""llama.cpp's own log: silent unless --verbose.

llama-cpp-python forwards llama.cpp's log to stderr and filters by its Python logger's level,
which ``Llama(verbose=False)`` sets to ERROR; llama.cpp still reports harmless conditions at
that level (e.g. "n_ctx_seq (512) > n_ctx_train (0)" for a vocabulary-only load). We install
our own callback that drops everything unless verbose.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

_state = {"verbose": False}
_callback: Any = None  # kept referenced: llama.cpp holds a raw pointer to it


def configure(verbose: bool) -> None:
    global _callback
    import llama_cpp

    _state["verbose"] = verbose
    if _callback is None:

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]  # ctypes CFUNCTYPE
        def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            if _state["verbose"]:
                sys.stderr.write(text.decode("utf-8", errors="replace"))

        _callback = callback
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
