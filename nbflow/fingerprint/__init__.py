"""Fingerprints: stable digests of code and data, and the type families they share with the serde.

The layer between the core and persistence. The result cache keys tasks with
it, resumed runs match tasks with it, and the JSON serde recognises numpy,
pandas, dataclass, enum, named tuple and pydantic values with its `family`.
"""

from nbflow.fingerprint.code import code_fingerprint, value_fingerprint
from nbflow.fingerprint.families import family
from nbflow.fingerprint.memo import DigestMemo
from nbflow.fingerprint.modules import is_user_module

__all__ = ["code_fingerprint", "value_fingerprint", "DigestMemo", "family", "is_user_module"]
