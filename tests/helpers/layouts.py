"""A dispatch mode that catches layout conversions in channels-last flows."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode


class NCHWKernelInputs(TorchDispatchMode):
    """Records the heavy kernels (convolutions, matrix products, ReLU backward) that receive a
    4-D NCHW-contiguous tensor with more than one channel and pixel: in a channels-last flow
    each one is a layout conversion, or a kernel mixing layouts (up to 17× slower on CPU)."""

    KERNELS = {"convolution", "convolution_backward", "threshold_backward", "mm", "addmm"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.__name__.split(".")[0] in self.KERNELS:
            for t in args:
                if (
                    isinstance(t, Tensor)
                    and t.ndim == 4
                    and t.shape[1] > 1
                    and t.shape[2] * t.shape[3] > 1
                    and t.is_contiguous()
                    and not t.is_contiguous(memory_format=torch.channels_last)
                ):
                    self.seen.append(f"{func.__name__} {tuple(t.shape)}")
        return func(*args, **(kwargs or {}))
