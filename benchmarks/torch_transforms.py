"""The wall conditions' 2-D transforms in PyTorch: dense products against FFTs, and what that
does to the a-posteriori error estimate.

    .venv/bin/python benchmarks/torch_transforms.py                  # everything, CPU, a few minutes
    .venv/bin/python benchmarks/torch_transforms.py --device cuda    # on a GPU
    .venv/bin/python benchmarks/torch_transforms.py --no-estimate --lattices 64,512 --batches 1

1. One forward and one inverse transform (:class:`pydiff.solvers.torch_transforms.Transform`,
   ``method="matrix"`` and ``"fft"``), float64, per wall condition, lattice, batch size and thread
   count, in ms per pair.
2. The a-posteriori estimate's solve, ``TorchCGSolver.approximate(rhs, maps, 20)`` (20
   preconditioned CG steps, 21 applications of the constant-D inverse, each a forward and an
   inverse transform) at ``--estimate-lattice`` with log-normal maps, with either method: the
   time before (dense products, what the solver did until 2026-12) and after.

Each figure is the shortest of ``--repeats`` timed runs after one untimed run: on a machine
shared with other jobs the shortest is the one they disturbed least.  ``--cpu-time`` times with
the process's CPU time instead of the wall clock, which other jobs taking the core do not inflate
(meaningful with one thread: OpenMP's waiting threads spin).  Run it on an idle machine, or say
that it was not.

Measured 2026-12-01 on a 2-core Intel Xeon (AVX-512, MKL 2024.2, torch 2.13) shared with other
jobs (load average 3 to 6 on the 2 cores), ``--cpu-time``, one thread; ms per forward + inverse
pair, matrix / fft:

    L    batch  dirichlet              neumann                periodic
    64     1    0.036 / 0.103          0.039 / 0.178          0.032 / 0.069
    64    16    0.353 / 1.19           0.344 / 0.940          0.382 / 0.432
    100    1    0.092 / 0.336          0.093 / 0.244          0.103 / 0.118
    100   16    1.43 / 5.85            1.39 / 2.86            1.50 / 1.46
    128    1    0.160 / 0.720          0.164 / 0.297          0.184 / 0.147
    128   16    2.55 / 11.2            2.65 / 4.14            2.98 / 2.07
    256    1    1.35 / 2.69 (2*257)    1.38 / 0.961           1.46 / 0.460
    256   16    23.8 / 55.5            22.0 / 26.5            22.4 / 11.5
    512    1    10.7 / 8.46            10.5 / 5.55            10.6 / 2.63
    512   16    225 / 188              224 / 149              228 / 97.8

and the products' time over the FFT form's at lengths with and without a large prime factor
(``--lattices 127,224,251,255,257,299,320,384,448,509,511``), batch 1 / batch 16:

    L     dirichlet 2(L+1)               neumann, periodic L
    127   256 = 2^8:      0.87 / 0.69    prime:    0.37 / 0.36, 0.58 / 0.55
    224   450 = 2*3^2*5^2: 1.12 / 0.73   2^5*7:    1.25 / 1.07, 2.50 / 1.75
    251   504 = 2^3*3^2*7: 1.43 / 1.29   prime:    0.73 / 0.66, 1.15 / 0.99
    255   512 = 2^9:      1.56 / 1.38    3*5*17:   0.76 / 0.64, 1.28 / 1.08
    257   516 = 2^2*3*43: 0.55 / 0.59    prime:    0.51 / 0.48, 0.84 / 0.72
    299   600 = 2^3*3*5^2: 1.47 / 0.83   13*23:    0.65 / 0.58, 1.15 / 1.01
    320   642 = 2*3*107:  0.46 / 0.51    2^6*5:    1.63 / 1.29, 3.56 / 2.48
    384   770 = 2*5*7*11: 1.51 / 1.51    2^7*3:    1.75 / 1.27, 3.62 / 2.45
    448   898 = 2*449:    0.99 / 0.79    2^6*7:    1.75 / 1.38, 3.75 / 2.79
    509   1020 = 2^2*3*5*17: 1.58 / 1.08 prime:    1.13 / 0.98, 1.80 / 1.60
    511   1024 = 2^10:    2.43 / 1.46    7*73:     0.36 / 0.35, 0.61 / 0.62

(the neumann 256 batch-16 ratio was 1.06 and 1.36 in two other runs: figures near 1 are within
the noise).  ``TorchCGSolver.approximate(rhs, maps, 20)`` at 512^2, batch 4, CPU seconds, matrix
/ fft: dirichlet 1.73 / 1.71, neumann 1.58 / 1.21, periodic 1.62 / 1.12 (the 21 constant-D
inverses alone: 0.98 / 0.83, 0.97 / 0.64, 0.97 / 0.35; the rest, the operator and CG's vector
updates, takes 0.55 to 0.75 s either way).  With two threads the wall-clock figures varied by
up to 10x from run to run on the loaded machine and are not reported.
"""

from __future__ import annotations

import argparse
import time

import torch

from pydiff.problem import Problem
from pydiff.solvers.torch_cg import TorchCGSolver
from pydiff.solvers.torch_transforms import BOUNDARIES, Transform


def seconds(run, device: torch.device, repeats: int, clock) -> float:
    """The shortest time of ``run()`` by ``clock`` (seconds) in ``repeats`` runs, after one untimed run."""
    def once() -> float:
        start = clock()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return clock() - start

    once()
    return min(once() for _ in range(repeats))


def transforms(lattices, batches, threads, device: torch.device, repeats: int, clock) -> None:
    print(f"one forward + one inverse transform, float64, ms (shortest of {repeats})")
    print(f"{'boundary':>9} {'L':>4} {'batch':>5} {'threads':>7} {'matrix':>9} {'fft':>9} {'matrix/fft':>10}")
    generator = torch.Generator(device=device).manual_seed(0)
    for boundary in BOUNDARIES:
        for L in lattices:
            pair = {method: Transform(L, boundary, device, torch.float64, method) for method in ("matrix", "fft")}
            for batch in batches:
                u = torch.randn(batch, L, L, dtype=torch.float64, device=device, generator=generator)
                for n in threads:
                    torch.set_num_threads(n)
                    ms = {method: 1e3 * seconds(lambda t=t: t.inverse(t.forward(u)), device, repeats, clock)
                          for method, t in pair.items()}
                    print(f"{boundary:>9} {L:>4} {batch:>5} {n:>7} {ms['matrix']:>9.3f} {ms['fft']:>9.3f} "
                          f"{ms['matrix'] / ms['fft']:>10.2f}", flush=True)


def estimate(L: int, batch: int, threads, device: torch.device, repeats: int, clock) -> None:
    print(f"\nTorchCGSolver.approximate(rhs, maps, 20) at {L}^2, batch {batch}, log-normal maps, "
          f"s (shortest of {repeats})")
    print(f"{'boundary':>9} {'threads':>7} {'matrix':>9} {'fft':>9} {'matrix/fft':>10} {'max |difference|':>16}")
    generator = torch.Generator(device=device).manual_seed(0)
    for boundary in BOUNDARIES:
        solver = TorchCGSolver(Problem(lattice=L, boundary=boundary), device=str(device))
        rhs = torch.randn(batch, L, L, dtype=torch.float64, device=device, generator=generator)
        maps = torch.exp(0.5 * torch.randn(batch, L, L, dtype=torch.float64, device=device, generator=generator))
        for n in threads:
            torch.set_num_threads(n)
            s, fields = {}, {}
            for method in ("matrix", "fft"):
                solver.transform = Transform(L, boundary, device, torch.float64, method)

                def run(method=method):
                    fields[method] = solver.approximate(rhs, maps, 20)

                s[method] = seconds(run, device, repeats, clock)
            difference = float((fields["matrix"] - fields["fft"]).abs().max())
            print(f"{boundary:>9} {n:>7} {s['matrix']:>9.3f} {s['fft']:>9.3f} {s['matrix'] / s['fft']:>10.2f} "
                  f"{difference:>16.1e}", flush=True)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lattices", type=ints, default=[64, 100, 128, 256, 512])
    parser.add_argument("--batches", type=ints, default=[1, 16])
    parser.add_argument("--threads", type=ints, default=[1, 2], help="torch.set_num_threads values (CPU)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--estimate-lattice", type=int, default=512)
    parser.add_argument("--estimate-batch", type=int, default=4)
    parser.add_argument("--no-estimate", action="store_true", help="only the transforms")
    parser.add_argument("--cpu-time", action="store_true", help="the process's CPU time, not the wall clock")
    args = parser.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    device = torch.device(args.device)
    threads = args.threads if device.type == "cpu" else [torch.get_num_threads()]
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads by default, "
          f"{'CPU time' if args.cpu_time else 'wall clock'}")
    transforms(args.lattices, args.batches, threads, device, args.repeats, clock)
    if not args.no_estimate:
        estimate(args.estimate_lattice, args.estimate_batch, threads, device, max(1, args.repeats // 2), clock)


if __name__ == "__main__":
    main()
