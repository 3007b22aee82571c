"""Load a TFLite interpreter: ai-edge-litert first, tflite-runtime as the alternative."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.errors import ModelError


def interpreter_class() -> tuple[Any, Any, str]:
    """(Interpreter, load_delegate, runtime name) from the first runtime that imports."""
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate

        return Interpreter, load_delegate, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter, load_delegate  # type: ignore

        return Interpreter, load_delegate, "tflite-runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed; `pip install ai-edge-litert` (or tflite-runtime with numpy<2)"
        ) from None


def load_interpreter(path: Path, threads: int, delegates: list[Any] | None = None) -> Any:
    """A ready (allocated) interpreter for the model file, or a ModelError saying what is wrong."""
    Interpreter, _, _ = interpreter_class()
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} not found; run `edge-agent models fetch ID`")
    try:
        interp = Interpreter(
            model_path=str(path), num_threads=threads, experimental_delegates=delegates or None
        )
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if "edgetpu-custom-op" in str(exc):
            raise ModelError(
                f"{path.name} is compiled for the Edge TPU and cannot run on the CPU; "
                f"use its CPU twin or set detector.delegate = \"edgetpu\""
            ) from None
        raise ModelError(f"{path.name} is not a usable TFLite model ({text[:160]})") from None
    return interp
