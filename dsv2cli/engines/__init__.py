"""Backends that run a model: llamacpp (local, in-process) and openai (any OpenAI-compatible endpoint)."""

from .base import Backend, Capabilities, GenerationParams, PromptProgress, Usage

__all__ = ["Backend", "Capabilities", "GenerationParams", "PromptProgress", "Usage"]
