"""Bijections: every layer maps ``x -> (y, log|det ∂y/∂x|)`` and back."""

from glowapp.flows.actnorm import ActNorm
from glowapp.flows.base import Bijection, FlowSequential, Inverse
from glowapp.flows.batchnorm import BatchNormFlow
from glowapp.flows.conv1x1 import ChannelPermutation, InvConv1x1, InvConv1x1LU
from glowapp.flows.coupling import (
    AdditiveTransform,
    AffineTransform,
    ChannelCoupling,
    CheckerboardCoupling,
)
from glowapp.flows.dequantization import UniformDequantization, VariationalDequantization
from glowapp.flows.preprocess import CenterShift, LogitTransform, Preprocessor, bits_per_dim
from glowapp.flows.scaling import DiagonalScaling
from glowapp.flows.spline import RationalQuadraticSpline
from glowapp.flows.split import Split, TopPrior, standard_normal_log_prob
from glowapp.flows.squeeze import Squeeze

__all__ = [
    "ActNorm",
    "AdditiveTransform",
    "AffineTransform",
    "BatchNormFlow",
    "Bijection",
    "CenterShift",
    "ChannelCoupling",
    "ChannelPermutation",
    "CheckerboardCoupling",
    "DiagonalScaling",
    "FlowSequential",
    "InvConv1x1",
    "InvConv1x1LU",
    "Inverse",
    "LogitTransform",
    "Preprocessor",
    "RationalQuadraticSpline",
    "Split",
    "Squeeze",
    "TopPrior",
    "UniformDequantization",
    "VariationalDequantization",
    "bits_per_dim",
    "standard_normal_log_prob",
]
