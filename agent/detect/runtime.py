"""Load a TFLite interpreter (ai-edge-litert, else tflite-runtime) and the Edge TPU delegate."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from agent.errors import DelegateUnavailable, ModelError

TFLITE_MAGIC = b"TFL3"
EDGETPU_OP = b"edgetpu-custom-op"
EDGETPU_HINT = (
    "install the Edge TPU runtime (Debian package libedgetpu1-std from Coral's apt repository), "
    "plug the accelerator in, or set detector.on_missing_accelerator = \"cpu\" to run the CPU twin"
)


def interpreter_class() -> tuple[Any, Any, str]:
    """(Interpreter, load_delegate, runtime name) from the first runtime that imports."""
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate

        return Interpreter, load_delegate, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter, load_delegate

        return Interpreter, load_delegate, "tflite-runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed; `pip install ai-edge-litert` "
            "(or tflite-runtime with numpy<2)"
        ) from None


def inspect_file(path: Path) -> bool:
    """Check the file is a TFLite flatbuffer; True if it holds Edge TPU code (edgetpu-custom-op)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"model file {str(path)!r} not found; run `edge-agent models fetch ID`"
        ) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise ModelError(
            f"cannot read model file {str(path)!r}: {exc.__class__.__name__}"
        ) from None
    if len(data) < 8 or data[4:8] != TFLITE_MAGIC:
        raise ModelError(f"{path.name} is not a TFLite model (no TFL3 flatbuffer header)")
    return EDGETPU_OP in data


def edgetpu_delegate(library: str = "libedgetpu.so.1", device: str = "") -> Any:
    """The loaded Edge TPU delegate, or DelegateUnavailable saying why and what to do."""
    _, load_delegate, _ = interpreter_class()
    try:
        # Probe with ctypes first: a failed load_delegate leaves a half-built object whose
        # destructor prints a traceback to stderr.
        ctypes.CDLL(library)
    except OSError as exc:
        reason = str(exc).split(":")[-1].strip() or "cannot be loaded"
        raise DelegateUnavailable(
            f"Edge TPU library {library} {reason.lower()}; {EDGETPU_HINT}"
        ) from None
    try:
        return load_delegate(library, {"device": device} if device else {})
    except (ValueError, OSError, RuntimeError) as exc:
        text = (str(exc).splitlines() or [exc.__class__.__name__])[0][:160]
        raise DelegateUnavailable(
            f"Edge TPU delegate did not start ({text}); is the accelerator plugged in? "
            f"{EDGETPU_HINT}"
        ) from None


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Hold back what the runtime's C++ code prints to fd 2 (the XNNPACK banner) while loading.

    Captured lines other than the banner are re-emitted after a successful load, so native
    warnings are not lost; after a failure the exception carries the message, so a user error
    stays one line.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    failed = False
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            rest = [
                ln
                for ln in text.splitlines()
                if ln.strip() and "XNNPACK delegate for CPU" not in ln
            ]
            if rest and not failed:
                sys.stderr.write("\n".join(rest) + "\n")


def load_interpreter(path: Path, threads: int, delegates: list[Any] | None = None) -> Any:
    """A ready (allocated) interpreter for the model file, or a ModelError saying what is wrong.

    A file holding Edge TPU code is refused unless a delegate is given: it never runs on the CPU.
    """
    Interpreter, _, _ = interpreter_class()
    has_tpu_code = inspect_file(path)
    if has_tpu_code and not delegates:
        raise ModelError(
            f"{path.name} is compiled for the Edge TPU and is never run on the CPU; "
            f"use its CPU twin or set detector.delegate = \"edgetpu\""
        )
    try:
        with _native_stderr_captured():
            interp = Interpreter(
                model_path=str(path), num_threads=threads, experimental_delegates=delegates or None
            )
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ModelError(f"{path.name} is not a usable TFLite model ({text[:160]})") from None
    return interp


def tensors_stay(interp: Any, indices: list[int]) -> bool:
    """Whether these tensors are where they were after one invoke() (on whatever the input holds).

    Here tensors are allocated once (load_interpreter) and never resized; a model whose runtime
    still moves one (dynamic outputs) is run without pinned arrays (agent/detect/tflite.py).
    """
    before = [interp.tensor(i)().ctypes.data for i in indices]  # each view dropped at once
    interp.invoke()
    return [interp.tensor(i)().ctypes.data for i in indices] == before


def pinned(interp: Any, index: int) -> Any:
    """Tensor `index`'s memory as a numpy array that may live across invoke().

    `interpreter.tensor(i)()` gives a view based on the interpreter's C++ wrapper, and invoke()
    refuses to run while one exists, because re-allocating tensors may move them. Only for tensors
    that stay where they are (`tensors_stay`; tests/detect/test_quality.py checks every model, and
    nothing here re-allocates or resizes after load_interpreter). The array keeps the interpreter
    itself alive (not the wrapper invoke() counts), so it can never outlive the memory. Built once,
    it spares the detect step one wrapper call per frame, each costing tens of microseconds from
    the cold cache invoke() leaves behind.
    """
    view = interp.tensor(index)()
    address, shape, dtype, size = view.ctypes.data, view.shape, view.dtype, view.nbytes
    del view
    memory = (ctypes.c_uint8 * size).from_address(address)
    memory._owner = interp
    import numpy as np

    return np.frombuffer(memory, dtype).reshape(shape)


class PinnedTensors:
    """Stands in for the interpreter in front of a decoder: tensor(i) gives pinned arrays (kept in
    `arrays`, so a test can check they still are where the runtime's tensors are).

    Everything else (get_tensor copies, tensor details) is the interpreter's own.
    """

    def __init__(self, interp: Any) -> None:
        self._interp = interp
        self.arrays: dict[int, Any] = {}

    def tensor(self, index: int) -> Any:
        array = self.arrays.get(index)
        if array is None:
            array = self.arrays[index] = pinned(self._interp, index)
        return lambda: array

    def __getattr__(self, name: str) -> Any:
        return getattr(self._interp, name)
