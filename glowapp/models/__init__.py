"""Flow assemblies with one API: ``encode``, ``decode``, ``log_prob``, ``sample``."""

from glowapp.models.glow import Glow
from glowapp.models.multiscale import MultiScaleFlow
from glowapp.models.nice import NICE
from glowapp.models.realnvp import RealNVP

__all__ = ["Glow", "NICE", "MultiScaleFlow", "RealNVP"]
