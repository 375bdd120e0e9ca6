"""``dsv2 extract``: fields as schema-valid JSON, each value with a verbatim quote checked against the source.

``schema`` (what to extract), ``run`` (one document: plan, grammar-constrained generation,
validation), ``verify`` (quotes against the source text), ``merge`` (chunks field by field),
``output`` (JSON / JSON Lines / CSV, resumable files), ``batch`` (many inputs).
"""

from .batch import BatchReport, Extractor, Guard, default_max_tokens, run_batch
from .merge import merge, merge_field
from .output import FORMATS, open_sink, pick_format
from .run import ExtractionError, ExtractionResult, ExtractPlan, plan, run
from .schema import CONTRACT_FIELDS, FieldSet, contract_fields, fields_from_schema, load_user_schema
from .verify import SourceText, check_fields

__all__ = [
    "CONTRACT_FIELDS",
    "FORMATS",
    "BatchReport",
    "ExtractPlan",
    "ExtractionError",
    "ExtractionResult",
    "Extractor",
    "FieldSet",
    "Guard",
    "SourceText",
    "check_fields",
    "contract_fields",
    "default_max_tokens",
    "fields_from_schema",
    "load_user_schema",
    "merge",
    "merge_field",
    "open_sink",
    "pick_format",
    "plan",
    "run",
    "run_batch",
]
