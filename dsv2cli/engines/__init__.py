"""Backends that run a model: llamacpp (local, in-process); remote backends come later."""

from .base import Backend, Capabilities, GenerationParams, PromptProgress, Usage

__all__ = ["Backend", "Capabilities", "GenerationParams", "PromptProgress", "Usage"]
