"""Flow assemblies with one API: ``encode``, ``decode``, ``log_prob``, ``sample``."""

from glowapp.models.glow import Glow
from glowapp.models.iresnet_flow import IResNetFlow
from glowapp.models.multiscale import MultiScaleFlow
from glowapp.models.nice import NICE
from glowapp.models.realnvp import RealNVP
from glowapp.models.spec import build_flow, flow_spec

__all__ = ["Glow", "IResNetFlow", "NICE", "MultiScaleFlow", "RealNVP", "build_flow", "flow_spec"]
