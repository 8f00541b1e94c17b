"""XGBoost's own predictor, reached through its C library without importing the ``xgboost`` package.

``import xgboost`` also imports scikit-learn, SciPy and pandas whenever they are installed
(``xgboost.compat`` probes for them at import time). On a 2-core machine that is 3 to 4 s:
longer than reading a million transactions. Scoring needs none of them, so this module
loads the shared library that the package itself wraps, found by the package's own
``libpath.py``, and calls the few functions that prediction needs. It is the same library
and the same entry point (``XGBoosterPredictFromDense``) as ``Booster.inplace_predict``, so
the margins are identical, bit for bit (tested against the package).

Training, approximate contributions and model introspection keep using the package.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import math
import weakref

import numpy as np

_Handle = ctypes.c_void_p
_ULong = ctypes.c_uint64
# XGBoosterPredictFromDense's arguments: raw margins (type 1; 0 would apply the objective's
# transform) from every tree, NaN as the missing value. The same for every call.
_MARGIN_ARGUMENTS = json.dumps(
    {
        "type": 1,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": math.nan,
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()


class XGBoostRuntimeError(RuntimeError):
    """The C library refused a call; the message is XGBoost's own."""


@functools.cache
def _library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("xgboost")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the xgboost package is not installed")
    # libpath.py imports only the standard library; loading it on its own keeps the search
    # rules identical to the package's without running the package's __init__.
    package_dir = next(iter(spec.submodule_search_locations))
    libpath_spec = importlib.util.spec_from_file_location(
        "_xgboost_libpath", f"{package_dir}/libpath.py"
    )
    libpath = importlib.util.module_from_spec(libpath_spec)
    libpath_spec.loader.exec_module(libpath)
    library = ctypes.CDLL(libpath.find_lib_path()[0])

    library.XGBGetLastError.restype = ctypes.c_char_p
    library.XGBoosterCreate.argtypes = [ctypes.POINTER(_Handle), _ULong, ctypes.POINTER(_Handle)]
    library.XGBoosterFree.argtypes = [_Handle]
    library.XGBoosterLoadModelFromBuffer.argtypes = [_Handle, ctypes.c_void_p, _ULong]
    library.XGBoosterGetNumFeature.argtypes = [_Handle, ctypes.POINTER(_ULong)]
    library.XGBoosterSaveModelToBuffer.argtypes = [
        _Handle,
        ctypes.c_char_p,  # {"format": ...}
        ctypes.POINTER(_ULong),
        ctypes.POINTER(ctypes.c_char_p),
    ]
    library.XGBoosterPredictFromDense.argtypes = [
        _Handle,
        ctypes.c_char_p,  # the input as a JSON array interface
        ctypes.c_char_p,  # prediction arguments as JSON
        _Handle,  # proxy matrix carrying a base margin; none here
        ctypes.POINTER(ctypes.POINTER(_ULong)),
        ctypes.POINTER(_ULong),
        ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),
    ]
    return library


def _check(status: int) -> None:
    if status != 0:
        raise XGBoostRuntimeError(_library().XGBGetLastError().decode("utf-8", "replace"))


class NativeBooster:
    """A booster loaded from serialised model bytes (any format XGBoost loads from memory).

    Safe to share between threads: XGBoost keeps the prediction buffer per thread, and each
    call copies its result out before returning.
    """

    def __init__(self, model_bytes: bytes):
        library = _library()
        handle = _Handle()
        _check(library.XGBoosterCreate(None, 0, ctypes.byref(handle)))
        # Freed when this object goes, even if loading below fails.
        self._finalizer = weakref.finalize(self, library.XGBoosterFree, handle)
        buffer = ctypes.create_string_buffer(model_bytes, len(model_bytes))
        _check(library.XGBoosterLoadModelFromBuffer(handle, buffer, len(model_bytes)))
        features = _ULong()
        _check(library.XGBoosterGetNumFeature(handle, ctypes.byref(features)))
        self._handle = handle
        self.num_features = int(features.value)

    def predict_margin(self, features: np.ndarray) -> np.ndarray:
        """Raw margins (log-odds for a logistic model) for a 2-D matrix of model features.

        NaN is a missing value, as in XGBoost. The thread count is the calling thread's
        XGBoost configuration, as for ``Booster.inplace_predict`` on a booster whose own
        ``nthread`` is unset.
        """
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.num_features:
            raise ValueError(
                f"expected a 2-D matrix with {self.num_features} feature columns, "
                f"got shape {matrix.shape}"
            )
        if len(matrix) == 0:
            return np.empty(0, dtype=np.float32)
        shape = ctypes.POINTER(_ULong)()
        dims = _ULong()
        result = ctypes.POINTER(ctypes.c_float)()
        _check(
            _library().XGBoosterPredictFromDense(
                self._handle,
                json.dumps(matrix.__array_interface__).encode(),
                _MARGIN_ARGUMENTS,
                None,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(result),
            )
        )
        out_shape = tuple(int(shape[i]) for i in range(dims.value))
        # The buffer belongs to the booster and is reused by this thread's next call: copy.
        return np.ctypeslib.as_array(result, shape=out_shape).copy()

    def to_json(self) -> bytes:
        """The model in XGBoost's JSON format (what ``Booster.save_raw("json")`` returns)."""
        length = _ULong()
        data = ctypes.c_char_p()
        _check(
            _library().XGBoosterSaveModelToBuffer(
                self._handle, b'{"format": "json"}', ctypes.byref(length), ctypes.byref(data)
            )
        )
        # The buffer belongs to the booster: copy it out.
        return ctypes.string_at(data, length.value)
