"""The diffusion problem: its parameters (:class:`Problem`), its random sources
(:func:`sample_sources`, :func:`source_images`) and the residual of its stationary equation
(:mod:`pydiff.problem.residual`).  numpy only."""

from .parameters import SETUPS, SOURCE_MODELS, Problem
from .sources import AMPLITUDE_RANGE_2024, SourceDraw, sample_sources, source_images

__all__ = ["AMPLITUDE_RANGE_2024", "SETUPS", "SOURCE_MODELS", "Problem", "SourceDraw", "sample_sources",
           "source_images"]
