"""Storing numpy arrays and scalars as tagged JSON: raw bytes plus dtype and shape.

Separate from `nbflow.persistence.serde` so that module stays about the format
and the standard library. numpy is never imported here: an encoder is only
looked up once numpy is in ``sys.modules``, and decoding imports it on demand.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from typing import Any

from nbflow.persistence._serde_base import TAG, _b64, _Decoder, _Encoder, _Failure, _unsupported_detail

# Fixed-size dtypes whose raw bytes are the whole value: bool, ints, floats, complex, datetime64,
# timedelta64, bytes and unicode strings, and structured records of those.
_RAW_KINDS = frozenset("biufcmMSUV")


def _dtype_json(dtype: Any, e: _Encoder, cls: type) -> Any:
    np = sys.modules["numpy"]
    if dtype.kind not in _RAW_KINDS or dtype.hasobject:
        why = f" (of dtype {dtype}, whose items are not fixed-size numbers or strings)"
        raise _Failure(_unsupported_detail(cls, why), unsupported=True)
    return e.enc(np.lib.format.dtype_to_descr(dtype))


def _dtype_from_json(data: Any, d: _Decoder) -> Any:
    np = d.require("numpy", "a numpy array")
    return np.lib.format.descr_to_dtype(d.dec(data))


def _enc_ndarray(value: Any, e: _Encoder) -> dict:
    shape = list(value.shape)
    if value.dtype.kind == "O":
        return {TAG: "numpy.ndarray", "v": {"dtype": "O", "shape": shape, "items": e.seq(value.ravel())}}
    dtype = _dtype_json(value.dtype, e, type(value))
    return {TAG: "numpy.ndarray", "v": {"dtype": dtype, "shape": shape, "b64": _b64(value.tobytes())}}


def _dec_ndarray(v: Any, d: _Decoder) -> Any:
    np = d.require("numpy", "a numpy array")
    shape = tuple(v["shape"])
    if v["dtype"] == "O":
        items = d.seq(v["items"])
        out = np.empty(len(items), dtype=object)
        # Item by item: np.array(items) would turn equal-length lists into a 2-d array.
        for i, item in enumerate(items):
            out[i] = item
        return out.reshape(shape)
    dtype = _dtype_from_json(v["dtype"], d)
    # frombuffer gives a read-only view of the bytes; copy so the array is writable, like the original.
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=dtype).reshape(shape).copy()


def _enc_numpy_scalar(value: Any, e: _Encoder) -> dict:
    dtype = value.dtype
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8):
        # Readable in the file, and exact: these fit a Python bool/int/float.
        return {TAG: "numpy.scalar", "v": {"dtype": dtype.str, "item": e.enc(value.item())}}
    return {
        TAG: "numpy.scalar",
        "v": {"dtype": _dtype_json(dtype, e, type(value)), "b64": _b64(value.tobytes())},
    }


def _dec_numpy_scalar(v: Any, d: _Decoder) -> Any:
    np = d.require("numpy", "a numpy scalar")
    if "item" in v:
        return np.dtype(v["dtype"]).type(d.dec(v["item"]))
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=_dtype_from_json(v["dtype"], d))[0]


_NUMPY_DECODERS: dict[str, Callable[[Any, _Decoder], Any]] = {
    "numpy.ndarray": _dec_ndarray,
    "numpy.scalar": _dec_numpy_scalar,
}

# By type family (see nbflow.fingerprint.families).
_NUMPY_ENCODERS: dict[str, Callable[[Any, _Encoder], Any]] = {
    "ndarray": _enc_ndarray,
    "numpy_scalar": _enc_numpy_scalar,
}
