"""Deprecated: fingerprints moved to `nbflow.fingerprint`, a layer of their own below persistence.

Kept for one release so that imports of the old path go on working, with a warning.
"""

from __future__ import annotations

import warnings

# A deprecated re-export (downward, so the layers allow it).
from nbflow.fingerprint import DigestMemo, code_fingerprint, value_fingerprint

__all__ = ["code_fingerprint", "value_fingerprint", "DigestMemo"]

warnings.warn(
    "nbflow.persistence.fingerprint moved to nbflow.fingerprint; import code_fingerprint, value_fingerprint "
    "and DigestMemo from there (the old path goes in the next release).",
    DeprecationWarning,
    stacklevel=2,
)
