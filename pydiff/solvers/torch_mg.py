"""Batched conjugate gradients preconditioned by one geometric multigrid V-cycle, in PyTorch, on
CPU or CUDA: exact stationary fields of varied problems in about a dozen iterations whatever the
lattice and the contrast.

Each sample solves ``A u = s``, ``A = gamma I - div(D grad)`` (the harmonic-mean fluxes of
:mod:`pydiff.problem.operator`, every wall condition), with its own diffusivity map.  CG runs in
float64 and stops a sample once its relative residual is below ``tol``; its preconditioner is one
V-cycle of a hierarchy built for each sample's own D:

- coarsening: every other cell along each axis, the cell-centred lattice read as a grid of
  unknowns: coarse cell k is fine cell 2k + 1 on a lattice of even side (L / 2 coarse cells),
  2k on an odd one ((L + 1) / 2, both edges coarse, so that on a periodic lattice every fine
  cell still lies between two coarse ones).  Any L coarsens, down to at most 16 cells per side,
  where a batched dense Cholesky factorisation (float64) solves exactly;
- interpolation P: operator-dependent (Dendy's black-box multigrid, after Alcouffe, Brandt,
  Dendy & Painter 1981): a fine cell takes its coarse neighbours' values weighted by its own
  couplings to them, so that the interpolated correction keeps the flux, not the value,
  continuous across a jump of D (:class:`Interpolation`);
- coarse operators: Galerkin, ``A_c = P^T A P`` (9-point stencils), summed cell by cell on the
  coarse lattice (:func:`galerkin`): every coarse level sees the jumps of D as the fine one does;
- smoother: Gauss-Seidel over the four sublattices of cells of equal parity (red-black on the
  5-point fine level), forward before the coarse correction and in reverse after it, on fields
  held split by sublattice (:class:`Level`).  With ``R = P^T``, Galerkin coarse operators and
  the exact coarsest solve the V-cycle is a symmetric positive definite linear map, which is
  what CG needs.

The V-cycle runs in float32 by default (``cycle_dtype``): the same iteration counts as float64
at contrast 10 and 1000 (at 10^5, 12-29 against 11-21), its cycle about twice as fast on a CPU
(512^2: 4 against 7-9 ms; a whole solve 0.15-0.17 against 0.19-0.21 s).  CG takes
Polak-Ribiere's beta (``<z_new, r_new - r_old> / <z_old, r_old>``, one more dot product), which
tolerates a preconditioner symmetric only to its float32 rounding.  One sweep before and after
each coarse correction: two take 8-9 iterations instead of 10-12, for no less time.

Measured (2-core Intel Xeon shared with other jobs, one thread, CPU seconds per sample, 2026-12-01;
benchmarks/torch_mg.py: inclusions, Dirichlet walls, 1-20 sources): CG iterations to a relative
residual of 1e-10, 10-11 at contrast 10 and 11-13 at contrast 1000 on every lattice from 64^2 to
512^2 (pyamg's smoothed-aggregation CG 10-13 and 14-22; torch-cg 87-117 at contrast 10, not
converged in 1000 at 1000); every wall, lognormal maps and odd lattices alike (421^2: 9-13). Seconds
per sample: 0.012-0.013 at 64^2, 0.02 at 128^2, 0.04 at 256^2, 0.13-0.16 at 512^2, against pyamg's
0.016-0.019, 0.05-0.06, 0.18-0.23 and 0.88-1.13 (set-up included), sparse LU's 0.008, 0.04 and 0.25,
and torch-cg's 1.8 at 512^2 (contrast 10). About a third of a 512^2 solve is the set-up (fine
operator, interpolation, Galerkin products: 50 ms).

Alternatives tried, with the same CG, smoother and float32 cycle (iterations per sample of four,
inclusions, Dirichlet walls, 64^2 / 512^2, contrast 10 and 1000):

=============================================================  =================  ==================
hierarchy                                                      contrast 10        contrast 1000
=============================================================  =================  ==================
operator-dependent P, Galerkin (chosen)                        10-11 / 10-12      11-12 / 11-13
geometric P (the constant-D operator's weights), Galerkin      12-14 / 13-16      18-25 / 24-30
geometric P, rediscretised, D averaged over 3 x 3 (arithm.)    18-22 / 19-27      29-53 / 39-65
geometric P, rediscretised, D averaged over 3 x 3 (harmonic)   19-34 / 18-49      181, >300 / 186, >300
operator-dependent P, rediscretised (harmonic)                 17-31 / 18-44      131, >300 / 149, >300
=============================================================  =================  ==================

(">300": CG had not converged after 300 iterations.)  Rediscretised coarse operators are not
Galerkin ones: the coarse correction is no longer an A-orthogonal projection, and at high
contrast the V-cycle is a poor, possibly indefinite preconditioner.  The Galerkin product was
first read off by probing ``P^T A P`` with nine coloured vectors: the same operators, 100 ms at
512^2 against the 14-18 of the cell-by-cell sum.  Coarse cells at odd indices on odd lattices
too (the two fine cells that meet across a periodic wrap each interpolated from its own side)
took 15-17 iterations on periodic 85^2 lattices, against 10-13 with the edges coarse.
"""

from __future__ import annotations

import numpy as np
import torch

from ..device import pick_device
from ..errors import ConfigError, NotConverged
from ..problem import Problem
from .base import Solver
from .torch_cg import fields_in_chunks, harmonic

# A lattice of at most this many cells per side is solved by dense Cholesky (256 unknowns at
# most: 6 MFlop to factorise, 0.1 MFlop per solve).
COARSEST = 16

# The numpy entry point solves this many cells at a time.  On a CPU a batch's fields should stay
# near the caches: per sample, 64^2 in batches of 16 took 4.4 ms, of 64 7.0 ms; 256^2 alone 57 ms,
# in fours 44, in eights 51; 512^2 alone 153 ms, in twos 195 (CPU time, one thread, 2026-12-01).
# On CUDA a larger batch fills the device (not measured: no GPU in that session); the peak memory
# is about 36 float64 fields of L^2 per sample (measured on the CPU), 1.2 GB for 16 of 512^2.
CHUNK_CELLS = {"cpu": 2**18, "cuda": 2**22}

# (dx, dy): the coupling of cell (i, j) to cell (i + dx, j + dy), x the lattice's axis -2.
EAST, NORTH, NORTH_EAST, SOUTH_EAST = (1, 0), (0, 1), (1, 1), (1, -1)

# Gauss-Seidel's order over the four sublattices of cells (i % 2, j % 2); the first two and the
# last two are not coupled by a 5-point stencil, so on the fine level this is red-black.
SUBLATTICES = ((0, 0), (1, 1), (0, 1), (1, 0))


def ghosts(x: torch.Tensor, periodic: bool) -> None:
    """Fill the ghost ring of (..., n + 2, n + 2) ``x`` with the opposite edges where ``periodic``
    (elsewhere it stays zero: walls)."""
    if periodic:
        n = x.shape[-1] - 2
        x[..., 0, 1:-1] = x[..., n, 1:-1]
        x[..., n + 1, 1:-1] = x[..., 1, 1:-1]
        x[..., :, 0] = x[..., :, n]
        x[..., :, n + 1] = x[..., :, 1]


def shifted(x: torch.Tensor, dx: int, dy: int, periodic: bool) -> torch.Tensor:
    """``y[..., i, j] = x[..., i + dx, j + dy]`` over the last two axes: wrapping when
    ``periodic``, zero beyond the lattice otherwise."""
    if periodic:
        return torch.roll(x, (-dx, -dy), (-2, -1))
    n, m = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(-dx, 0):n - max(dx, 0), max(-dy, 0):m - max(dy, 0)] = \
        x[..., max(dx, 0):n - max(-dx, 0), max(dy, 0):m - max(-dy, 0)]
    return out


def padded(x: torch.Tensor, dim: int, wrap: bool) -> torch.Tensor:
    """``x`` with one more entry at each end of axis ``dim``: the wrapped neighbours, or zeros."""
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, x.shape[dim] - 1, 1)
    if not wrap:
        first, last = torch.zeros_like(first), torch.zeros_like(last)
    return torch.cat([last, x, first], dim)


def ringed(x: torch.Tensor, wrap: bool) -> torch.Tensor:
    """(..., n, m) ``x`` in a ring one entry wide: the wrapped neighbours, or zeros (the
    :func:`padded` of both axes, in one copy)."""
    flat = x.reshape(-1, *x.shape[-2:])
    out = torch.nn.functional.pad(flat, (1, 1, 1, 1), mode="circular" if wrap else "constant")
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


class Stencil:
    """A symmetric operator on an n x n lattice: ``(A u)_I = diag_I u_I - sum_d a_d[I] u_{I+d}``.

    ``diag``: (..., n, n); ``couplings``: offset ``d`` -> (..., n, n) ``a_d = -A[I, I + d]``, zero
    where ``I + d`` is off a non-periodic lattice.  Built from the four offsets east, north,
    north-east and south-east (:data:`EAST` ...); the other four are their mirror images,
    ``a_{-d}[I] = a_d[I - d]``, so the operator is symmetric to the last bit.
    """

    def __init__(self, diag: torch.Tensor, upper: dict[tuple[int, int], torch.Tensor], periodic: bool) -> None:
        self.diag, self.periodic, self.n = diag, periodic, diag.shape[-1]
        self.couplings = dict(upper)
        for (dx, dy), a in upper.items():
            self.couplings[(-dx, -dy)] = shifted(a, -dx, -dy, periodic)

    def times(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` (..., n, n) for ``x`` (..., n + 2, n + 2) with its ghost ring (:func:`ghosts`)."""
        n = self.n
        out = self.diag * x[..., 1:-1, 1:-1]
        for (dx, dy), a in self.couplings.items():
            out.addcmul_(a, x[..., 1 + dx:n + 1 + dx, 1 + dy:n + 1 + dy], value=-1.0)
        return out

    def get(self, d: tuple[int, int]) -> torch.Tensor | float:
        """``a_d``, or 0 for an offset the stencil does not reach (the diagonals of a 5-point one)."""
        return self.couplings.get(d, 0.0)

    def to(self, dtype: torch.dtype) -> Stencil:
        """The same stencil in ``dtype``."""
        out = Stencil.__new__(Stencil)
        out.__dict__.update(self.__dict__)
        out.diag, out.couplings = self.diag.to(dtype), {d: a.to(dtype) for d, a in self.couplings.items()}
        return out


def fine_stencil(D: torch.Tensor, gamma: float, boundary: str) -> Stencil:
    """The 5-point ``A = gamma I - div(D grad)`` of (b, L, L) maps ``D``, as
    :class:`pydiff.solvers.torch_cg.TorchOperator` applies it."""
    periodic = boundary == "periodic"
    hx = harmonic(D, shifted(D, 1, 0, periodic))  # zero past a wall: harmonic(D, 0) = 0
    hy = harmonic(D, shifted(D, 0, 1, periodic))
    diag = gamma + hx + shifted(hx, -1, 0, periodic) + hy + shifted(hy, 0, -1, periodic)
    if boundary == "dirichlet":  # a ghost cell at 0 with the cell's own D, per wall face
        diag[..., 0, :] += D[..., 0, :]
        diag[..., -1, :] += D[..., -1, :]
        diag[..., :, 0] += D[..., :, 0]
        diag[..., :, -1] += D[..., :, -1]
    return Stencil(diag, {EAST: hx, NORTH: hy}, periodic)


class Interpolation:
    """Black-box multigrid interpolation P from an (nc, nc) coarse lattice to the (n, n) fine one.

    Coarse cell k is fine cell ``2k + c``: ``c = 1`` on a lattice of even side (``nc = n / 2``),
    ``c = 0`` on an odd one (``nc = (n + 1) / 2``, both edges coarse).  Every other fine cell
    then lies between two coarse cells (or a coarse cell and a wall), also across the wrap of a
    periodic lattice, and takes their values with weights from its own row of the operator.

    Fine cells fall in four classes, the sublattices of :class:`Level`: (c, c) are the coarse
    cells, copied; (1 - c, c) lie between two coarse cells along x and (c, 1 - c) along y,
    weighted by their couplings that way summed across the other axis ("collapsed", Dendy 1982);
    (1 - c, 1 - c) lie among four coarse cells and take the operator's average of their eight
    neighbours, themselves interpolated.  Arrays: ``wx`` (2, ..., nF, nc), ``wy`` (2, ..., nc,
    nF), ``wxy`` (2, 2, ..., nF, nF), ``nF = n - nc``; index 0 the coarse neighbour towards lower
    indices, 1 the higher; one past a wall has weight 0.  :meth:`restrict` is P^T.
    """

    def __init__(self, stencil: Stencil) -> None:
        n = stencil.n
        self.c = c = 1 - n % 2
        self.n, self.nc = n, (n + 1 - c) // 2
        self.nf, f = n - self.nc, 1 - c
        self.wrap = stencil.periodic and c == 1  # an even ring: fine cell 0 lies between coarse cells nc - 1 and 0
        nf, a, diag = self.nf, stencil.get, stencil.diag
        # in (..., nc + 2) arrays of coarse values or weights with coarse k at k + 1: the low and
        # the high coarse neighbour of every fine cell of parity f, and the coarse cells
        self.low, self.high, self.inner = slice(1 - c, 1 - c + nf), slice(2 - c, 2 - c + nf), slice(1, self.nc + 1)

        def at(x, p, q):
            return x[..., p::2, q::2] if torch.is_tensor(x) else x

        def total(offsets, p, q):  # the sum of the couplings at ``offsets`` on one sublattice (sliced first: a quarter of the work)
            return sum(at(a(d), p, q) for d in offsets)

        low_x = total(((-1, 0), (-1, 1), (-1, -1)), f, c)
        high_x = total(((1, 0), (1, 1), (1, -1)), f, c)
        along_x = at(diag, f, c) - total(((0, 1), (0, -1)), f, c)
        low_y = total(((0, -1), (1, -1), (-1, -1)), c, f)
        high_y = total(((0, 1), (1, 1), (-1, 1)), c, f)
        along_y = at(diag, c, f) - total(((1, 0), (-1, 0)), c, f)
        self.wx = torch.stack(torch.broadcast_tensors(low_x / along_x, high_x / along_x))
        self.wy = torch.stack(torch.broadcast_tensors(low_y / along_y, high_y / along_y))
        # a (1 - c, 1 - c) cell's edge neighbours and their weights towards its corners
        wx = [padded(w, -1, self.wrap) for w in self.wx]
        wy = [padded(w, -2, self.wrap) for w in self.wy]
        corner = {}
        for sx in (0, 1):
            for sy in (0, 1):
                dx, dy = 2 * sx - 1, 2 * sy - 1
                x_edge = wx[sx][..., :, self.high if sy else self.low]  # neighbour (0, dy), between coarse ones along x
                y_edge = wy[sy][..., self.high if sx else self.low, :]  # neighbour (dx, 0): along y
                corner[sx, sy] = at(a((dx, dy)), f, f) + at(a((0, dy)), f, f) * x_edge + at(a((dx, 0)), f, f) * y_edge
        middle = at(diag, f, f)
        self.wxy = torch.stack([torch.stack([corner[sx, 0] / middle, corner[sx, 1] / middle]) for sx in (0, 1)])

    def prolong(self, uc: torch.Tensor, fine: dict[tuple[int, int], torch.Tensor]) -> None:
        """``fine += P uc``: (..., nc, nc) coarse values added to fine ones held by sublattice
        (:class:`Level`), ``{(p, q): (..., cells of parity p along x, of parity q along y)}``."""
        c, f, low, high, inner = self.c, 1 - self.c, self.low, self.high, self.inner
        up = padded(padded(uc, -2, self.wrap), -1, self.wrap)
        w = self.wxy
        fine[c, c].add_(uc)
        fine[f, c].addcmul_(self.wx[0], up[..., low, inner]).addcmul_(self.wx[1], up[..., high, inner])
        fine[c, f].addcmul_(self.wy[0], up[..., inner, low]).addcmul_(self.wy[1], up[..., inner, high])
        fine[f, f].addcmul_(w[0, 0], up[..., low, low]).addcmul_(w[1, 0], up[..., high, low]) \
                  .addcmul_(w[0, 1], up[..., low, high]).addcmul_(w[1, 1], up[..., high, high])

    def restrict(self, r: dict[tuple[int, int], torch.Tensor]) -> torch.Tensor:
        """P^T: fine residuals by sublattice (as :meth:`prolong` holds them) -> (..., nc, nc) coarse ones."""
        nc, c, f, low, high, inner = self.nc, self.c, 1 - self.c, self.low, self.high, self.inner
        rp = r[c, c].new_zeros(*r[c, c].shape[:-2], nc + 2, nc + 2)  # coarse k at k + 1; 0, nc + 1: past the lattice
        rp[..., inner, inner] += r[c, c]
        rp[..., low, inner].addcmul_(self.wx[0], r[f, c])
        rp[..., high, inner].addcmul_(self.wx[1], r[f, c])
        rp[..., inner, low].addcmul_(self.wy[0], r[c, f])
        rp[..., inner, high].addcmul_(self.wy[1], r[c, f])
        w = self.wxy
        rp[..., low, low].addcmul_(w[0, 0], r[f, f])
        rp[..., high, low].addcmul_(w[1, 0], r[f, f])
        rp[..., low, high].addcmul_(w[0, 1], r[f, f])
        rp[..., high, high].addcmul_(w[1, 1], r[f, f])
        if self.wrap:
            rp[..., nc, :] += rp[..., 0, :]
            rp[..., 1, :] += rp[..., nc + 1, :]
            rp[..., :, nc] += rp[..., :, 0]
            rp[..., :, 1] += rp[..., :, nc + 1]
        return rp[..., inner, inner]

    def _coarse(self, x: torch.Tensor, dim: int, t: int, pad: bool = True) -> torch.Tensor:
        """``x`` indexed along ``dim`` by the fine cells of parity 1 - c (``nF`` entries), read
        at the fine cell ``2I + c + t`` (t = +-1) of every coarse cell I: nc entries, zero (or
        wrapped) past the lattice.  ``pad`` False: ``x`` is already :func:`padded`."""
        x = padded(x, dim, self.wrap) if pad else x
        return x.narrow(dim, (2 * self.c + t + 1) // 2, self.nc)

    def samples(self, x: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
        """(..., n, n) fine ``x`` at the fine cells (2I + c + tx, 2J + c + ty) of every coarse cell:
        ``{(tx, ty): (..., nc, nc)}`` for t in {-1, 0, 1}^2, zero (or wrapped) past the lattice.
        Strided views of one padded copy: the set-up's Galerkin product reads them once each
        (a copy per sample took a third of its time)."""
        ring = ringed(x, self.wrap)  # fine cell k at k + 1
        c, nc = self.c, self.nc
        return {(tx, ty): ring[..., 1 + c + tx:1 + c + tx + 2 * nc - 1:2, 1 + c + ty:1 + c + ty + 2 * nc - 1:2]
                for tx in (-1, 0, 1) for ty in (-1, 0, 1)}

    def weight(self, tx: int, ty: int) -> torch.Tensor:
        """``p_t[I] = P[2I + c + t, I]`` (..., nc, nc): the weight that coarse cell I gives its
        fine cell t = (tx, ty), ``t`` in {-1, 0, 1}^2 (1 for the coarse cell itself)."""
        side_x, side_y = (1 - tx) // 2, (1 - ty) // 2  # coarse cell I is the fine cell's low (0) or high (1) one
        if tx and ty:
            return self._coarse(self._coarse(self.wxy[side_x, side_y], -2, tx), -1, ty)
        if tx:
            return self._coarse(self.wx[side_x], -2, tx)
        if ty:
            return self._coarse(self.wy[side_y], -1, ty)
        return self.wx.new_ones(*self.wx.shape[1:-2], self.nc, self.nc)

    def to(self, dtype: torch.dtype) -> Interpolation:
        """The same interpolation with weights in ``dtype``."""
        out = Interpolation.__new__(Interpolation)
        out.__dict__.update(self.__dict__)
        out.wx, out.wy, out.wxy = self.wx.to(dtype), self.wy.to(dtype), self.wxy.to(dtype)
        return out


# How one axis of a fine-to-fine step f -> g = f + s reads on the coarse lattice, for the Galerkin
# product: f = 2I + c + t is the fine cell t in {-1, 0, 1} of coarse cell I (its interpolation
# weight is P's), g the fine cell t' of the coarse cell I + d; t' = t + s - 2d.  On a ring of odd
# side both edge cells are coarse and neighbours across the wrap, one cell closer than 2: the
# step between them "crosses", with t = t' = 0.
def _axis_steps(odd_ring: bool) -> list[tuple[int, int, int, int, bool]]:
    """(t, s, d, t', crosses) of every step along one axis."""
    steps = [(t, s, d, t + s - 2 * d, False) for t in (-1, 0, 1) for s in (-1, 0, 1) for d in (-1, 0, 1)
             if abs(t + s - 2 * d) <= 1]
    if odd_ring:
        steps += [(0, 1, 1, 0, True), (0, -1, -1, 0, True)]
    return steps


def galerkin(stencil: Stencil, P: Interpolation) -> Stencil:
    """``P^T A P`` as a 9-point stencil on the coarse lattice.

    ``A_c[I, I + d] = sum over steps of p_t[I] A[2I+c+t, 2I+c+t+s] p_t'[I + d]`` (see
    :func:`_axis_steps`; ``p_t`` is :meth:`Interpolation.weight`): a sum of products of
    coarse-sized arrays, with about a seventh of the memory traffic of probing the product with
    nine coloured vectors on the fine lattice (14-18 against 100 ms at 512^2).  Only the couplings
    east, north, north-east and south-east are summed; :class:`Stencil` mirrors them."""
    periodic, nc = stencil.periodic, P.nc
    odd_ring = periodic and not P.wrap
    entries = {(0, 0): stencil.diag, **{s: -a for s, a in stencil.couplings.items()}}  # A[f, f + s]
    sampled: dict = {}  # A[2I+c+t, 2I+c+t+s] by s, then t
    wanted = ((0, 0), EAST, NORTH, NORTH_EAST, SOUTH_EAST)
    weights = {(tx, ty): P.weight(tx, ty) for tx in (-1, 0, 1) for ty in (-1, 0, 1)}
    partners: dict = {}
    in_ring: dict = {}  # p_t with a ring of zeros (or of the wrapped values) around it

    def partner(t: tuple[int, int], d: tuple[int, int], crosses: tuple[bool, bool]) -> torch.Tensor:
        """``p_t[I + d]`` on the coarse lattice: zero past a wall; across the wrap of an odd ring
        only where the step crosses it (its last or first coarse row)."""
        key = (t, d, crosses)
        if key not in partners and not any(crosses):  # a view of the weights, padded once
            if t not in in_ring:
                in_ring[t] = ringed(weights[t], P.wrap)
            partners[key] = in_ring[t][..., 1 + d[0]:1 + d[0] + nc, 1 + d[1]:1 + d[1] + nc]
        if key not in partners:
            w = weights[t]
            for axis, step, cross in ((-2, d[0], crosses[0]), (-1, d[1], crosses[1])):
                if step == 0:
                    continue
                if cross:
                    rolled = torch.roll(w, -step, axis)
                    w = torch.zeros_like(rolled)
                    edge = nc - 1 if step > 0 else 0
                    w.select(axis, edge).copy_(rolled.select(axis, edge))
                else:
                    w = shifted(w, *((step, 0) if axis == -2 else (0, step)), P.wrap)
            partners[key] = w
        return partners[key]

    steps = _axis_steps(odd_ring)
    out = {d: torch.zeros_like(weights[0, 0]) for d in wanted}
    first: dict = {}  # p_t[I] A[2I+c+t, 2I+c+t+s], by (t, s)
    for tx, sx, dx, ux, cx in steps:
        for ty, sy, dy, uy, cy in steps:
            if (sx, sy) not in entries or (dx, dy) not in out:
                continue
            key = (tx, ty, sx, sy)
            if key not in first:
                if (sx, sy) not in sampled:
                    sampled[sx, sy] = P.samples(entries[sx, sy])
                first[key] = weights[tx, ty] * sampled[sx, sy][tx, ty]
            out[dx, dy].addcmul_(first[key], partner((ux, uy), (dx, dy), (cx, cy)))
    return Stencil(out[0, 0], {d: -out[d] for d in wanted[1:]}, periodic)


class Level:
    """One level of the V-cycle of a batch, in the cycle's precision: its field and right-hand
    side, Gauss-Seidel sweeps and residuals of its stencil, all split by parity.

    The field is one buffer (..., size) holding four padded arrays, ``x[p, q]`` (..., h_p + 2,
    h_q + 2): the cells ``(2i + p, 2j + q)`` at ``[1 + i, 1 + j]`` (``h_0 = ceil(n / 2)``,
    ``h_1 = n // 2``), with a ghost ring: zero past a wall, a copy of the wrapped cell on a
    periodic lattice (:meth:`refresh`).  Every neighbour of a sublattice is then a contiguous
    slice of another, made once here: a sweep costs less than half of one over strided views of
    the lattice (512^2, float32: 0.4 against 1.0 ms), and the interpolation classes are these
    sublattices.  The cycle visits each level once per application, so the buffers are the
    level's own.

    Each sublattice of :data:`SUBLATTICES` is updated at once; on a periodic lattice of odd side
    its first and last cells are neighbours and see each other's old values (a Jacobi step within
    the sublattice: still symmetric, and convergent, the sublattice's block being diagonally
    dominant).
    """

    def __init__(self, stencil: Stencil) -> None:
        n = stencil.n
        self.n, batch = n, stencil.diag.shape[:-2]
        h = (len(range(0, n, 2)), len(range(1, n, 2)))
        self.shapes = {(p, q): (h[p] + 2, h[q] + 2) for p, q in SUBLATTICES}
        self.offsets, size = {}, 0
        for pq in SUBLATTICES:
            self.offsets[pq] = size
            size += self.shapes[pq][0] * self.shapes[pq][1]
        self.buffer = stencil.diag.new_zeros(*batch, size)
        x = {pq: self.buffer[..., self.offsets[pq]:self.offsets[pq] + rows * cols].view(*batch, rows, cols)
             for pq, (rows, cols) in self.shapes.items()}
        self.inner = {(p, q): x[p, q][..., 1:h[p] + 1, 1:h[q] + 1] for p, q in SUBLATTICES}
        self.rhs = {(p, q): stencil.diag.new_zeros(*batch, h[p], h[q]) for p, q in SUBLATTICES}
        self.parts = {}
        for p, q in SUBLATTICES:
            cells = (..., slice(p, None, 2), slice(q, None, 2))
            neighbours = []
            for (dx, dy), a in stencil.couplings.items():
                (ox, pp), (oy, qq) = divmod(p + dx, 2), divmod(q + dy, 2)  # sublattice pp, index shifted by ox
                neighbours.append((a[cells].contiguous(), x[pp, qq][..., 1 + ox:1 + ox + h[p], 1 + oy:1 + oy + h[q]]))
            self.parts[p, q] = (stencil.diag[cells].contiguous(), (1.0 / stencil.diag[cells]).contiguous(), neighbours)
        self.wrapped = self._wrapped(stencil.diag.device) if stencil.periodic else {}

    def _position(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Where cell (i, j) of the lattice sits in the field's buffer."""
        p, q = i % 2, j % 2
        out = np.empty(np.broadcast(i, j).shape, dtype=np.int64)
        for pq in SUBLATTICES:
            here = (p == pq[0]) & (q == pq[1])
            width = self.shapes[pq][1]
            out[here] = self.offsets[pq] + (1 + i[here] // 2) * width + 1 + j[here] // 2
        return out

    def _wrapped(self, device: torch.device) -> dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]:
        """Periodic lattices: the ghost cells of every array and the cells they copy, grouped by
        the copied cell's sublattice (a sweep of one sublattice refreshes only those)."""
        n = self.n
        ghost_parts: list[np.ndarray] = []
        source_parts: list[np.ndarray] = []
        for p, q in SUBLATTICES:
            rows, cols = self.shapes[p, q]
            gi, gj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            ring = (gi == 0) | (gi == rows - 1) | (gj == 0) | (gj == cols - 1)
            gi, gj = gi[ring], gj[ring]
            ghost_parts.append(self.offsets[p, q] + gi * cols + gj)
            source_parts.append(np.stack([(2 * (gi - 1) + p) % n, (2 * (gj - 1) + q) % n]))
        ghosts, sources = np.concatenate(ghost_parts), np.concatenate(source_parts, axis=1)
        out = {}
        for p, q in SUBLATTICES:
            mine = (sources[0] % 2 == p) & (sources[1] % 2 == q)
            out[p, q] = (torch.as_tensor(ghosts[mine], device=device),
                         torch.as_tensor(self._position(sources[0][mine], sources[1][mine]), device=device))
        return out

    def start(self, b: torch.Tensor) -> None:
        """Take (..., n, n) ``b`` as the right-hand side (in the level's precision), from x = 0."""
        for p, q in SUBLATTICES:
            self.rhs[p, q].copy_(b[..., p::2, q::2])
        self.buffer.zero_()

    def refresh(self, changed=SUBLATTICES) -> None:
        """Copy into the ghost ring the cells of the ``changed`` sublattices (periodic lattices)."""
        for pq in changed:
            if pq in self.wrapped:
                ghosts, sources = self.wrapped[pq]
                self.buffer[..., ghosts] = self.buffer[..., sources]

    def sweep(self, order) -> None:
        """One Gauss-Seidel sweep on ``A x = b`` over the sublattices in ``order``, in place: a
        sublattice's new values depend on the others' only, so they are summed where they go."""
        for pq in order:
            _, inverse, neighbours = self.parts[pq]
            x = self.inner[pq]
            (a, view), rest = neighbours[0], neighbours[1:]
            torch.addcmul(self.rhs[pq], a, view, out=x)
            for a, view in rest:
                x.addcmul_(a, view)
            x.mul_(inverse)
            self.refresh((pq,))

    def residual(self) -> dict[tuple[int, int], torch.Tensor]:
        """``b - A x`` by sublattice (the classes :meth:`Interpolation.restrict` reads)."""
        out = {}
        for pq in SUBLATTICES:
            diag, _, neighbours = self.parts[pq]
            r = torch.addcmul(self.rhs[pq], diag, self.inner[pq], value=-1.0)
            for a, view in neighbours:
                r.addcmul_(a, view)
            out[pq] = r
        return out

    def correct(self, P: Interpolation, coarse: torch.Tensor) -> None:
        """``x += P coarse``, the coarse level's correction."""
        P.prolong(coarse, self.inner)
        self.refresh()

    def solution(self, dtype: torch.dtype) -> torch.Tensor:
        """The field as one (..., n, n) array of ``dtype``."""
        first = self.inner[0, 0]
        out = first.new_empty(*first.shape[:-2], self.n, self.n, dtype=dtype)
        for p, q in SUBLATTICES:
            out[..., p::2, q::2] = self.inner[p, q]
        return out


class DenseCholesky:
    """The exact inverse of a (b, n, n) stencil by batched dense Cholesky, in float64."""

    def __init__(self, stencil: Stencil) -> None:
        n = stencil.n
        cells = torch.arange(n * n, device=stencil.diag.device).reshape(n, n)
        diag = stencil.diag.double()
        matrix = diag.new_zeros(diag.shape[0], n * n * n * n)
        matrix.index_add_(1, (cells * (n * n + 1)).reshape(-1), diag.reshape(diag.shape[0], -1))
        for (dx, dy), a in stencil.couplings.items():  # a is 0 where the neighbour is past a wall
            other = shifted(cells, dx, dy, True)
            matrix.index_add_(1, (cells * n * n + other).reshape(-1), -a.double().reshape(diag.shape[0], -1))
        self.n, self.factor = n, torch.linalg.cholesky(matrix.reshape(-1, n * n, n * n))

    def __call__(self, b: torch.Tensor) -> torch.Tensor:
        x = torch.cholesky_solve(b.double().reshape(-1, self.n * self.n, 1), self.factor)
        return x.reshape(b.shape).to(b.dtype)


class VCycle:
    """One V-cycle of the hierarchy of (b, L, L) maps ``D``: a symmetric positive definite
    approximation of ``A^-1`` (module doc).  ``dtype``: the precision the cycle runs in;
    ``sweeps``: Gauss-Seidel sweeps before and after each coarse correction.  ``fine`` is the
    float64 operator itself (CG's)."""

    def __init__(self, D: torch.Tensor, gamma: float, boundary: str, dtype: torch.dtype = torch.float32,
                 sweeps: int = 1, fine_dtype: torch.dtype = torch.float64) -> None:
        self.fine = fine_stencil(D.to(fine_dtype), gamma, boundary)
        self.dtype, self.sweeps, self.levels = dtype, sweeps, []
        # The hierarchy is built in the cycle's precision: a float32 cycle gains nothing from
        # float64 weights and coarse operators, and their set-up then takes half the time (512^2:
        # 28 against 65 ms per sample, the same iterations; module doc).
        stencil = self.fine.to(dtype)
        while stencil.n > COARSEST:
            P = Interpolation(stencil)
            coarse = galerkin(stencil, P)
            self.levels.append((Level(stencil), P))
            stencil = coarse
        self.coarsest = DenseCholesky(stencil)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        """``M r`` for (b, L, L) ``r``, in ``r``'s dtype."""
        return self._cycle(0, r, r.dtype)

    def operator(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` (b, L, L) in the fine operator's precision: the operator itself, applied to
        (b, L, L) ``v``."""
        padded_v = v.new_zeros(*v.shape[:-2], v.shape[-2] + 2, v.shape[-1] + 2, dtype=self.fine.diag.dtype)
        padded_v[..., 1:-1, 1:-1] = v
        ghosts(padded_v, self.fine.periodic)
        return self.fine.times(padded_v)

    def _cycle(self, level: int, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The cycle from ``level`` down on (..., n, n) ``b``: (..., n, n) of ``dtype``."""
        if level == len(self.levels):
            return self.coarsest(b).to(dtype)
        smoother, P = self.levels[level]
        smoother.start(b)
        for _ in range(self.sweeps):
            smoother.sweep(SUBLATTICES)
        correction = self._cycle(level + 1, P.restrict(smoother.residual()), self.dtype)
        smoother.correct(P, correction)
        for _ in range(self.sweeps):
            smoother.sweep(SUBLATTICES[::-1])
        return smoother.solution(dtype)


class TorchMGSolver(Solver):
    """Backend ``torch-mg``: stationary fields of any diffusivity and walls, batched on ``device``,
    by CG preconditioned with a geometric multigrid V-cycle (module doc).

    :meth:`fields_of` maps (b, L, L) images and maps on the device to the fields on the device;
    calling the solver with numpy arrays goes through it, ``chunk`` samples at a time (default:
    :data:`CHUNK_CELLS`; memory: about 36 float64 fields of L^2 per sample).  ``iterations``
    records the CG iterations of the last batch (of its slowest chunk).
    """

    name = "torch-mg"
    targets = ("stationary",)

    def __init__(self, problem: Problem, device: str = "auto", tol: float = 1e-10, max_iterations: int = 100,
                 cycle_dtype: torch.dtype = torch.float32, sweeps: int = 1, chunk: int | None = None) -> None:
        super().__init__(problem)
        if not 0 < tol < 1:
            raise ConfigError(f"the CG tolerance must be in (0, 1), got {tol}")
        if sweeps < 1:
            raise ConfigError(f"the V-cycle needs at least one Gauss-Seidel sweep, got {sweeps}")
        self.device, self.tol, self.max_iterations = pick_device(device), tol, max_iterations
        self.cycle_dtype, self.sweeps = cycle_dtype, sweeps
        self.chunk = chunk or max(1, CHUNK_CELLS.get(self.device.type, 2**18) // problem.lattice**2)
        self.iterations = 0

    def preconditioner(self, diffusivity: torch.Tensor | None, like: torch.Tensor,
                       fine_dtype: torch.dtype = torch.float64) -> VCycle:
        """The V-cycle of the batch's maps (its ``fine`` is the operator, in ``fine_dtype``: float64
        for CG; the cycle's own precision where only the cycle runs); ``diffusivity`` None: the
        constant ``problem.D``, shaped like ``like``."""
        D = (torch.full_like(like, self.problem.D, dtype=fine_dtype) if diffusivity is None
             else diffusivity.to(device=self.device, dtype=fine_dtype))
        return VCycle(D, self.problem.gamma, self.problem.boundary, self.cycle_dtype, self.sweeps, fine_dtype)

    def _cg(self, M: VCycle, rhs: torch.Tensor, u: torch.Tensor, target: torch.Tensor,
            max_iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Preconditioned CG on ``A u = rhs`` (b, L, L) from ``u`` until every sample's residual
        norm is at most ``target`` (b,) or ``max_iterations`` have run: ``(u, r)``.

        Polak-Ribiere's beta, ``<z_new, r_new - r_old> / <z_old, r_old>`` with ``r_new - r_old =
        -alpha A p`` (module doc).  A sample whose residual is below its target stays put."""
        b = len(rhs)
        padded_p = rhs.new_zeros(b, rhs.shape[1] + 2, rhs.shape[2] + 2)  # A reads neighbours from a ghost ring
        inner = padded_p[:, 1:-1, 1:-1]

        def A(v: torch.Tensor) -> torch.Tensor:
            inner.copy_(v)
            ghosts(padded_p, M.fine.periodic)
            return M.fine.times(padded_p)

        def dot(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return torch.bmm(v.reshape(b, 1, -1), w.reshape(b, -1, 1)).reshape(b)

        def unconverged(r: torch.Tensor) -> torch.Tensor:
            return torch.linalg.vector_norm(r.reshape(b, -1), dim=1) > target

        r = rhs - A(u)
        active = unconverged(r)
        self.iterations = 0
        if max_iterations == 0 or not bool(active.any()):
            return u, r
        z = M(r)
        p = z.clone()
        rz = dot(r, z)
        zero = torch.zeros_like(rz)
        for self.iterations in range(1, max_iterations + 1):
            Ap = A(p)
            alpha = torch.where(active, rz / dot(p, Ap), zero)[:, None, None]
            u.addcmul_(alpha, p)
            r.addcmul_(alpha, Ap, value=-1.0)
            active = unconverged(r)
            if not bool(active.any()):
                break
            z = M(r)
            rz_new = dot(r, z)
            beta = torch.where(active, -alpha[:, 0, 0] * dot(z, Ap) / rz, zero)
            p.mul_(beta[:, None, None]).add_(z)
            rz = torch.where(active, rz_new, rz)
        return u, r

    @torch.no_grad()
    def fields_of(self, images: torch.Tensor, diffusivity: torch.Tensor | None = None,
                  initial: torch.Tensor | None = None) -> torch.Tensor:
        """Stationary fields (b, L, L) float64 of (b, L, L) images (and maps; None: the constant
        ``problem.D``), on the solver's device.

        ``initial``: (b, L, L) first guesses of the unnormalised fields (a network's prediction
        times its scale: a warm start); None: zero.

        Raises:
            NotConverged: a sample's relative residual is above ``tol`` after ``max_iterations``.
        """
        s = images.to(device=self.device, dtype=torch.float64)
        M = self.preconditioner(diffusivity, s)
        u = torch.zeros_like(s) if initial is None else initial.to(device=self.device, dtype=torch.float64).clone()
        target = self.tol * torch.linalg.vector_norm(s.flatten(1), dim=1)
        u, r = self._cg(M, s, u, target, self.max_iterations)
        reached = torch.linalg.vector_norm(r.flatten(1), dim=1)
        if bool((reached <= target).all()):
            return u
        worst = float((reached / torch.linalg.vector_norm(s.flatten(1), dim=1)).max())
        raise NotConverged(f"torch-mg did not reach a relative residual of {self.tol:g} in {self.max_iterations} "
                           f"iterations (reached {worst:.2e})")

    @torch.no_grad()
    def approximate(self, rhs: torch.Tensor, diffusivity: torch.Tensor | None = None,
                    iterations: int = 3, cycle: VCycle | None = None) -> torch.Tensor:
        """``A^-1 rhs`` (b, L, L) float64 after ``iterations`` preconditioned CG steps from the
        V-cycle's answer (0 steps: that answer alone, about a tenth of the error left): a cheap
        solve of an error equation, where the first digits are what matter.  No tolerance, no
        error.  ``cycle``: the V-cycle of these maps (:meth:`preconditioner`) where the caller
        has built it already (``diffusivity`` is then not read)."""
        if iterations < 0:
            raise ConfigError(f"iterations must be >= 0, got {iterations}")
        r = rhs.to(device=self.device, dtype=torch.float64)
        M = self.preconditioner(diffusivity, r) if cycle is None else cycle
        if iterations == 0:
            return M(r)
        round_off = 1e-13 * torch.linalg.vector_norm(r.flatten(1), dim=1)  # every step asked for, short of round-off
        return self._cg(M, r, M(r), round_off, iterations)[0]

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        return fields_in_chunks(self, images, diffusivity, chunk=self.chunk)
