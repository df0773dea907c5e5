"""Run directories written by pydiff 0.1: what of them is still read, and what is only recognised.

pydiff 0.1 kept a run's best weights in ``best.pt``, a torch file ``{"model": state_dict,
"epoch", "val_loss"}``, where pydiff now writes model.safetensors; such a run still evaluates,
predicts and calibrates (:func:`best_weights`).  Its first checkpoint format (a ``last.pt``
without a format tag, with ``optimizer`` and ``rollback`` at its top level) cannot be resumed;
:func:`is_first_format` recognises it so that the refusal says what it is.

Nothing here opens a file: :mod:`pydiff.training.checkpoint` reads both files as tensors and
plain values only (``torch.load(weights_only=True)``) and hands over what it read.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataFileError

BEST = "best.pt"  # pydiff 0.1's best weights: read (tensors only) where a run has no model.safetensors
FIRST_FORMAT = ("a checkpoint of pydiff 0.1's first format, which cannot be resumed here; its best.pt still "
                "evaluates; train into a new --out")


def best_weights(best: object, path: Path) -> tuple[dict, dict]:
    """``(state_dict, metadata)`` of a pydiff 0.1 run from the contents of its best.pt (``path``,
    for the message), in the form :func:`pydiff.training.checkpoint.read_model_file` returns.

    Raises:
        DataFileError: the file holds no weights.
    """
    if not isinstance(best, dict) or not isinstance(best.get("model"), dict):
        raise DataFileError(f"{path}: cannot be loaded (it holds no weights); retrain it")
    # pydiff 0.1's surrogate registered its output layers twice, under a second name
    weights = {k: v for k, v in best["model"].items() if ".output_conv." not in k}
    return weights, {"epoch": str(best.get("epoch", -1)), "val_loss": repr(best.get("val_loss"))}


def is_first_format(checkpoint: object) -> bool:
    """Whether the contents of a last.pt are pydiff 0.1's first, untagged checkpoint format."""
    return isinstance(checkpoint, dict) and "optimizer" in checkpoint and "rollback" in checkpoint
