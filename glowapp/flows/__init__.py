"""Bijections: every layer maps ``x -> (y, log|det ∂y/∂x|)`` and back."""

from glowapp.flows.actnorm import ActNorm
from glowapp.flows.autoregressive import InverseAutoregressiveFlow, MaskedAutoregressiveFlow
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
from glowapp.flows.emerging import EmergingConv2d
from glowapp.flows.iresnet import FlattenedResidualBlock, InvertibleResidualBlock
from glowapp.flows.planar_radial import PlanarFlow, RadialFlow
from glowapp.flows.preprocess import CenterShift, LogitTransform, Preprocessor, bits_per_dim
from glowapp.flows.scaling import DiagonalScaling
from glowapp.flows.spline import RationalQuadraticSpline
from glowapp.flows.split import Split, TopPrior, standard_normal_log_prob
from glowapp.flows.squeeze import Squeeze
from glowapp.flows.vector_coupling import VectorCoupling

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
    "EmergingConv2d",
    "FlattenedResidualBlock",
    "FlowSequential",
    "InvConv1x1",
    "InvConv1x1LU",
    "Inverse",
    "InverseAutoregressiveFlow",
    "InvertibleResidualBlock",
    "LogitTransform",
    "MaskedAutoregressiveFlow",
    "PlanarFlow",
    "Preprocessor",
    "RadialFlow",
    "RationalQuadraticSpline",
    "Split",
    "Squeeze",
    "TopPrior",
    "UniformDequantization",
    "VariationalDequantization",
    "VectorCoupling",
    "bits_per_dim",
    "standard_normal_log_prob",
]
