"""dsv2: read more than you have time for, with a local DeepSeek-V2."""

__version__ = "0.1.0"
__all__ = ["__version__"]
