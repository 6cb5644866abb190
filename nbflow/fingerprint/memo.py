"""`DigestMemo`: fingerprints for one run of a parallel step, each shared value and each graph digested once."""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Iterable
from typing import Any

from nbflow.fingerprint.code import code_encoder, value_fingerprint

__all__ = ["DigestMemo"]

_SCALARS = (type(None), bool, int, float, str)
# The task digest's own space: a change to its chunks must change this.
_TASK_PERSON = b"nbflow.task.3"
_SCALAR_BYTES = {
    type(None): lambda v: (b"N", b""),
    bool: lambda v: (b"T" if v else b"F", b""),
    int: lambda v: (b"I", v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)),
    float: lambda v: (b"D", struct.pack("<d", v)),
    str: lambda v: (b"S", v.encode("utf-8", "surrogatepass")),
}


class DigestMemo:
    """Fingerprints for one run of a parallel step: each shared value and each graph digested once.

    A dataset in the step's state that every task reads is hashed once, not once per task;
    code is hashed once per run (never across runs: a global it reads may change between them).
    """

    def __init__(self) -> None:
        # id -> (object, digest): holding the object keeps its id from being reused.
        self._values: dict[int, tuple[Any, str]] = {}
        self._code: dict[int, tuple[Any, str, frozenset[str]]] = {}

    def code(self, obj: Any) -> str:
        """`code_fingerprint` of ``obj``, computed once per memo."""
        return self._code_and_modules(obj)[1]

    def modules(self, obj: Any) -> frozenset[str]:
        """The user modules (files beside the notebook) whose code ``obj`` reaches."""
        return self._code_and_modules(obj)[2]

    def _code_and_modules(self, obj: Any) -> tuple[Any, str, frozenset[str]]:
        known = self._code.get(id(obj))
        if known is None:
            enc = code_encoder(obj)
            known = self._code[id(obj)] = (obj, enc.hexdigest(), frozenset(enc.user_modules))
        return known

    def value(self, value: Any, *, strict: bool = True) -> str:
        """`value_fingerprint` of ``value``; values other than plain scalars are remembered by identity.

        Args:
            strict: raise TypeError for a value that cannot be digested; otherwise give it a
                digest never seen before (so nothing keyed on it is ever found again).
        """
        if type(value) in _SCALARS:
            return value_fingerprint(value)
        known = self._values.get(id(value))
        if known is None:
            try:
                digest = value_fingerprint(value)
            except TypeError:
                if strict:
                    raise
                # Two such values of one type cannot be told apart, so none may pass for another:
                # a digest of its own, never the same twice, means "not known to be the same".
                digest = value_fingerprint(("opaque", secrets.token_hex(16)))
            known = self._values[id(value)] = (value, digest)
        return known[1]

    def task(self, reads: Iterable[str], inputs: dict, state: Any, *, strict: bool = True) -> str:
        """What a task starts from: its inputs and the values of the state keys it reads.

        Computed for every task of a cached or persisted step, so plain scalars go into one hash
        directly (tagged by type: ``1``, ``1.0`` and ``True`` differ, as do ``0.0`` and ``-0.0``),
        and only other values cost a fingerprint of their own.
        """
        chunks = [b"r"]
        for key in sorted(k for k in reads if k in state):
            self._chunk(chunks, key, state[key], strict)
        chunks.append(b"i")
        for key, value in sorted((str(k), v) for k, v in inputs.items()):
            self._chunk(chunks, key, value, strict)
        return hashlib.blake2b(b"".join(chunks), digest_size=16, person=_TASK_PERSON).hexdigest()

    def _chunk(self, chunks: list[bytes], key: str, value: Any, strict: bool) -> None:
        name = key.encode("utf-8", "surrogatepass")
        chunks.append(len(name).to_bytes(4, "little") + name)
        encode = _SCALAR_BYTES.get(type(value))
        # Every chunk is a tag and a length-prefixed payload, so no two streams of parts can meet.
        tag, payload = (b"d", self.value(value, strict=strict).encode()) if encode is None else encode(value)
        chunks.append(tag + len(payload).to_bytes(8, "little") + payload)
