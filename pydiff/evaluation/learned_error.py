"""Fit and apply the learned error model (:class:`pydiff.nn.error_cnn.ErrorModel`).

Labels are cheap here: the exact solver gives every calibration sample its true error.  The
model is fitted on a labelled calibration split (a run's validation samples: never trained on,
only used to pick its best epoch) to log10 of each prediction's mean and max absolute error,
then reads predictions it has not seen.  Its inputs need no ground truth: the source image, the
prediction, the physics residual (scaled by the calibration residuals' spread, through asinh:
residuals span decades) and the diffusivity channel where D varies.
"""

from __future__ import annotations

import numpy as np
import torch

from ..nn.error_cnn import ErrorModel

FLOOR = 1e-8  # errors below this are "exact": log10 would run off to -inf


def features(images: np.ndarray, prediction: np.ndarray, residual: np.ndarray, residual_scale: float,
             diffusivity_channel: np.ndarray | None = None) -> np.ndarray:
    """(n, C, L, L) float32 inputs of the error model from (n, [1,] L, L) arrays."""
    n, L = len(images), images.shape[-1]
    channels = [np.asarray(images, np.float32).reshape(n, L, L), np.asarray(prediction, np.float32).reshape(n, L, L),
                np.arcsinh(np.asarray(residual, np.float64).reshape(n, L, L) / residual_scale).astype(np.float32)]
    if diffusivity_channel is not None:
        channels.append(np.asarray(diffusivity_channel, np.float32).reshape(n, L, L))
    return np.stack(channels, axis=1)


def error_targets(prediction: np.ndarray, fields: np.ndarray) -> np.ndarray:
    """(n, 2) float32 log10 of each prediction's mean and max absolute error."""
    n = len(prediction)
    error = np.abs(np.asarray(prediction, np.float64).reshape(n, -1) - np.asarray(fields, np.float64).reshape(n, -1))
    return np.log10(np.maximum(np.stack([error.mean(axis=1), error.max(axis=1)], axis=1), FLOOR)).astype(np.float32)


def fit_error_model(inputs: np.ndarray, targets: np.ndarray, epochs: int = 40, batch_size: int = 32, lr: float = 2e-3,
                    seed: int = 0, device: torch.device | str = "cpu") -> ErrorModel:
    """An :class:`ErrorModel` fitted to ``targets`` (n, 2) from ``inputs`` (n, C, L, L) by Adam
    on the mean squared error of the log10 errors, with a cosine learning rate; seeded."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ErrorModel(inputs.shape[1]).to(device)
    x, y = torch.from_numpy(inputs), torch.from_numpy(targets)
    steps = epochs * -(-len(x) // batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = torch.nn.functional.mse_loss(model(x[batch].to(device)), y[batch].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def predicted_errors(model: ErrorModel, inputs: np.ndarray, batch_size: int = 256,
                     device: torch.device | str = "cpu") -> np.ndarray:
    """(n, 2) predicted mean and max absolute errors (not their logs)."""
    device = torch.device(device)
    out = [model(torch.from_numpy(inputs[lo:lo + batch_size]).to(device)).cpu().numpy()
           for lo in range(0, len(inputs), batch_size)]
    return 10.0 ** np.concatenate(out).astype(np.float64) if out else np.zeros((0, 2))
