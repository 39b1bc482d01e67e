"""Flow assemblies with one API: ``encode``, ``decode``, ``log_prob``, ``sample``."""

from glowapp.models.glow import Glow
from glowapp.models.iresnet_flow import IResNetFlow
from glowapp.models.multiscale import MultiScaleFlow
from glowapp.models.nice import NICE
from glowapp.models.realnvp import RealNVP
from glowapp.models.spec import build_flow, flow_spec
from glowapp.models.tarflow import TarFlow

__all__ = [
    "Glow",
    "IResNetFlow",
    "NICE",
    "MultiScaleFlow",
    "RealNVP",
    "TarFlow",
    "build_flow",
    "flow_spec",
]
