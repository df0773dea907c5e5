"""The wall conditions' orthonormal 2-D transforms in PyTorch, through ``torch.fft``.

:func:`pydiff.solvers.spectral.basis` gives, per wall condition, the orthonormal (L, L) matrix
``B`` whose rows are the eigenvectors of the 1-D second difference; the 2-D transform of a field
``u`` is ``B @ u @ B.T`` and its inverse ``B.T @ v @ B``.  Those products cost O(L^3) per sample.
:class:`Transform` applies the same maps with FFTs in O(L^2 log L), with the same ordering and
normalisation (the eigenvalues of :func:`pydiff.solvers.spectral.eigenvalues` still belong to
the same entries), in float32 or float64, on any device ``torch.fft`` runs on, and through
autograd (every step is a differentiable ``torch`` operation).

The 2-D transform is the 1-D one along both axes; the 1-D transforms, of ``x`` of length L:

- ``dirichlet``, DST-I: ``sqrt(2/(L+1)) sum_k x_k sin(pi (p+1)(k+1) / (L+1))`` is ``-sqrt(2/(L+1))``
  times the imaginary part of entry ``p + 1`` of the real FFT of ``[0, x, 0 ... 0]``, of length
  ``2 (L + 1)`` (the odd extension ``[0, x, 0, -reversed x]`` would give twice the same numbers).
  The matrix is symmetric and its own inverse.
- ``neumann``, DCT-II by Makhoul's reordering (IEEE TASSP 28, 1980): with ``v = [x_0, x_2, x_4,
  ..., x_5, x_3, x_1]`` and ``V`` its FFT, ``DCT[p] = Re(t_p V_p)`` and ``DCT[L - p] = -Im(t_p V_p)``
  with ``t_p = s_p exp(-i pi p / (2L))`` (``s_0 = sqrt(1/L)``, else ``sqrt(2/L)``): one real FFT of
  length L gives all L coefficients.  The inverse (DCT-III, the transpose) runs the same steps
  backwards through an inverse real FFT.
- ``periodic``, the real Hartley transform: ``Re(F) - Im(F)`` of the orthonormal FFT ``F``.  The
  2-D one comes from a single 2-D real FFT ``Y``: ``H[p, q]`` (``q <= L/2``) and ``H[p, L - q]`` are
  the real and imaginary parts of ``Y[-p, q] + i Y[p, q]``.  Symmetric and its own inverse.

Along the last axis, entries are sliced, flipped and concatenated, never gathered with an index
list: on a CPU, ``index_select`` along the last axis of a 512^2 float64 field takes 8 to 10
times as long as a copy (5 times as long as the real FFT along that axis) and made the FFT form
slower than the dense products; whole rows (axis -2) gather at the speed of a copy.  The FFT of a
time-reversed real sequence is the conjugate of its FFT, so reversing the input of an FFT
replaces a conjugation.

On a CPU the batch is transformed a block of samples at a time (:data:`BLOCK`): the FFT form
makes several passes over its data, each cheap while a block stays in the cache and several times
slower once the batch does not (at 512^2, a batch of 16 in one block took 2.5 to 4.5 times as
long as in blocks of one sample).

Which form is faster depends on L, the wall condition and the machine: see :data:`FFT_FROM`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from .spectral import basis

BOUNDARIES = ("dirichlet", "neumann", "periodic")
METHODS = ("auto", "matrix", "fft")
FFT_DTYPES = (torch.float32, torch.float64)

# When ``method="auto"`` takes the FFT form: on a CPU, from L = FFT_FROM[boundary] on, where the
# length of the FFTs (2 (L + 1) for the DST-I, L otherwise) has no prime factor above
# LARGEST_PRIME.  Below FFT_FROM the two products with the basis matrix (MKL's dgemm) are faster.
# MKL's FFTs of lengths with a large prime factor are 2 to 4 times slower than of smooth lengths
# near them, and the FFT form lost at L = 256, 320 and 448 with Dirichlet walls (2 (L + 1) =
# 2 * 257, 2 * 3 * 107, 2 * 449), at 257, 299 (13 * 23) and 511 (7 * 73) with Neumann walls, and
# at 257 and 511 with periodic ones.  (The largest prime factor is a rough guide only: L = 509,
# prime, was 1.8 times faster with periodic walls.)  At every L measured that the rule passes the
# FFT form took 1/1.2 to 1/4 of the products' CPU time at batch 1, 1/0.8 to 1/2.8 at batch 16.
# Measured with benchmarks/torch_transforms.py --cpu-time (one forward and one inverse transform,
# float64, one thread) on a 2-core Intel Xeon with AVX-512, 2026-12-01, with other jobs sharing
# the cores: the figures are in that script's notes.
FFT_FROM = {"dirichlet": 256, "neumann": 256, "periodic": 128}
LARGEST_PRIME = 19  # 2 * 513 = 2 * 3^3 * 19 (L = 512 with Dirichlet walls): 1.2 to 1.4 times faster

# Elements per block of samples that a CPU transforms at a time (512 KiB of float64: one 256^2 field).
BLOCK = 2**16


def fft_length(L: int, boundary: str) -> int:
    """The length of the 1-D FFTs that the FFT form of ``boundary``'s transform takes."""
    return 2 * (L + 1) if boundary == "dirichlet" else L


def largest_prime_factor(n: int) -> int:
    """The largest prime factor of ``n >= 1`` (1 for 1)."""
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n)


def auto_method(L: int, boundary: str, device: torch.device, dtype: torch.dtype) -> str:
    """``fft`` or ``matrix``: the faster form where it was measured (see :data:`FFT_FROM`), the
    matrix form where it was not (devices other than the CPU)."""
    fast = (device.type == "cpu" and dtype in FFT_DTYPES and L >= FFT_FROM[boundary]
            and largest_prime_factor(fft_length(L, boundary)) <= LARGEST_PRIME)
    return "fft" if fast else "matrix"


def _along(dim: int, index: slice) -> tuple:
    """The indexing tuple that slices axis ``dim`` (-1 or -2) of a (..., L, L) tensor."""
    return (..., index) if dim == -1 else (..., index, slice(None))


class Transform:
    """The 2-D orthonormal transform of one wall condition on an L x L lattice.

    ``forward(u)`` is ``basis @ u @ basis.T`` and ``inverse(v)`` is ``basis.T @ v @ basis``
    (``basis`` from :func:`pydiff.solvers.spectral.basis`), for (..., L, L) tensors of ``dtype``
    on ``device``; leading dimensions are batch dimensions.  Both return new tensors (contiguous
    in the FFT form) and are differentiable.

    Args:
        L: the lattice side.
        boundary: ``dirichlet``, ``neumann`` or ``periodic``.
        device: where the tensors live.
        dtype: of the tensors: ``torch.float64`` or ``torch.float32`` (others: the matrix form only).
        method: ``fft`` (O(L^2 log L)), ``matrix`` (the dense products, O(L^3)) or ``auto``
            (:func:`auto_method`): the FFT form on a CPU at large L, the products at small L and
            on other devices, where the choice has not been measured yet
            (benchmarks/torch_transforms.py ``--device cuda`` measures it).
    """

    def __init__(self, L: int, boundary: str = "dirichlet", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float64, method: str = "auto") -> None:
        if boundary not in BOUNDARIES:
            raise ConfigError(f"no fast transform for the boundary {boundary!r}; choose one of {', '.join(BOUNDARIES)}")
        if method not in METHODS:
            raise ConfigError(f"unknown transform method {method!r}; choose one of {', '.join(METHODS)}")
        if L < 1:
            raise ConfigError(f"the lattice side must be positive, got {L}")
        device = torch.device(device)
        if method == "auto":
            method = auto_method(L, boundary, device, dtype)
        if method == "fft" and dtype not in FFT_DTYPES:
            raise ConfigError(f"the FFT form of the transforms runs in float32 or float64, not {dtype}")
        self.L, self.boundary, self.method, self.device, self.dtype = L, boundary, method, device, dtype
        if method == "matrix":
            self.basis = torch.as_tensor(basis(L, boundary), dtype=dtype, device=device)
            self.basis_t = self.basis.T.contiguous()
            return
        # the batch dimensions merged, so many samples fit in a block at small L
        self._per_block = max(1, BLOCK // (L * L)) if device.type == "cpu" else None
        complex_dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        if boundary == "periodic":
            self._negate = torch.as_tensor((-np.arange(L)) % L, device=device)  # row p -> row -p
        elif boundary == "neumann":
            p = np.arange(L // 2 + 1)
            factors = np.where(p == 0, math.sqrt(1.0 / L), math.sqrt(2.0 / L)) * np.exp(-1j * np.pi * p / (2 * L))

            def per_axis(values: np.ndarray) -> dict[int, torch.Tensor]:  # along axis -1, and along axis -2
                tensor = torch.as_tensor(values, dtype=complex_dtype, device=device)
                return {-1: tensor, -2: tensor[:, None]}

            self._twiddle = per_axis(np.conj(factors))  # conj(t_p)
            self._inverse_twiddle = per_axis(np.conj(1.0 / factors))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """(..., L, L) -> (..., L, L): ``basis @ u @ basis.T``, the coefficients of ``u`` in the
        eigenvectors (entry [p, q]: mode p along axis -2, mode q along axis -1)."""
        if self.method == "matrix":
            return self.basis @ u @ self.basis_t
        return self._blocks(self._forward, u)

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        """(..., L, L) -> (..., L, L): ``basis.T @ v @ basis``, the field of coefficients ``v``."""
        if self.method == "matrix":
            return self.basis_t @ v @ self.basis
        return self._blocks(self._inverse, v)

    def _blocks(self, transform, u: torch.Tensor) -> torch.Tensor:
        """``transform`` of ``u``, a block of at most :data:`BLOCK` elements at a time on a CPU."""
        if self._per_block is None or u.numel() <= self._per_block * self.L**2:
            return transform(u)
        flat = u.reshape(-1, self.L, self.L)
        return torch.cat([transform(block) for block in flat.split(self._per_block)]).reshape(u.shape)

    def _forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.boundary == "periodic":
            return self._hartley(u)
        if self.boundary == "dirichlet":
            return self._sine(u)
        return self._cosine(self._cosine(u, -1), -2)

    def _inverse(self, v: torch.Tensor) -> torch.Tensor:
        if self.boundary == "periodic":  # the Hartley and sine matrices are symmetric and orthogonal:
            return self._hartley(v)  # their own inverses
        if self.boundary == "dirichlet":
            return self._sine(v)
        return self._inverse_cosine(self._inverse_cosine(v, -1), -2)

    def _hartley(self, u: torch.Tensor) -> torch.Tensor:
        L = self.L
        y = torch.fft.rfft2(u, norm="ortho")
        z = torch.add(y.index_select(-2, self._negate), y, alpha=1j)  # Y[-p, q] + i Y[p, q]
        return torch.cat((z.real, z.imag[..., 1:(L + 1) // 2].flip(-1)), -1)

    def _sine(self, u: torch.Tensor) -> torch.Tensor:
        L = self.L

        def along_last(x: torch.Tensor) -> torch.Tensor:  # -sum_k x_k sin(pi (p+1)(k+1) / (L+1))
            return torch.fft.rfft(torch.nn.functional.pad(x, (1, L + 1)))[..., 1:L + 1].imag

        # both passes along the last axis, each reading its input transposed: the real FFT along
        # axis -2 is several times slower on a CPU.  The two signs cancel.
        return along_last(along_last(u.mT).mT) * (2.0 / (L + 1))

    def _cosine(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """The orthonormal DCT-II along axis ``dim`` (-1 or -2)."""
        L = self.L
        # v reversed, [x_0, x_1, x_3, x_5, ..., x_4, x_2]: its FFT is conj(V), so t* conj(V) =
        # conj(t V) holds DCT[p] in its real part and DCT[L - p] in its imaginary part
        reversed_v = torch.cat((x[_along(dim, slice(0, 1))], x[_along(dim, slice(1, None, 2))],
                                x[_along(dim, slice(2, None, 2))].flip(dim)), dim)
        z = torch.fft.rfft(reversed_v, dim=dim) * self._twiddle[dim]
        return torch.cat((z.real, z.imag[_along(dim, slice(1, (L + 1) // 2))].flip(dim)), dim)

    def _inverse_cosine(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """The orthonormal DCT-III (the DCT-II's transpose) along axis ``dim`` (-1 or -2)."""
        L = self.L
        # t V = X[p] - i X[L - p] for p = 0 .. L/2; its conjugate X[p] + i X[L - p] is built
        # instead (so the inverse FFT's output comes reversed).  There is no X[L]: irfft ignores
        # the imaginary part of the zero frequency (and gives it no gradient), so any value
        # serves there: X[0].
        imaginary = torch.cat((x[_along(dim, slice(0, 1))], x[_along(dim, slice((L + 1) // 2, None))].flip(dim)), dim)
        spectrum = torch.complex(x[_along(dim, slice(0, L // 2 + 1))], imaginary) * self._inverse_twiddle[dim]
        w = torch.fft.irfft(spectrum, n=L, dim=dim)  # w[k] = v[-k]: x[2j] = w[-j], x[2j + 1] = w[j + 1]
        out = w.new_empty(w.shape)
        out[_along(dim, slice(0, 1))] = w[_along(dim, slice(0, 1))]
        out[_along(dim, slice(2, None, 2))] = w[_along(dim, slice(L // 2 + 1, None))].flip(dim)
        out[_along(dim, slice(1, None, 2))] = w[_along(dim, slice(1, L // 2 + 1))]
        return out
