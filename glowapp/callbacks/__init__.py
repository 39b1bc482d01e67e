"""Lightning callbacks: checkpoints, the non-finite step policy, weight averaging, and images
written and logged during training.

Configure them in a YAML config, e.g.::

    trainer:
      callbacks:
        - class_path: glowapp.callbacks.SampleGridCallback
          init_args: {every_n_steps: 500, temperatures: [0.0, 0.7, 1.0]}
        - class_path: glowapp.callbacks.InterpolationCallback
          init_args: {every_n_epochs: 1, mode: spherical}
        - class_path: glowapp.callbacks.InpaintingCallback
          init_args: {every_n_epochs: 1, mask: center, iterations: 200}
        - class_path: glowapp.callbacks.ManipulationCallback
          init_args: {every_n_epochs: 1, positive_class: 9, negative_class: 7}
        - class_path: glowapp.callbacks.SkipNonFiniteSteps
          init_args: {max_skipped_steps: 20}
        - class_path: glowapp.callbacks.EMA
          init_args: {decay: 0.999}
        - class_path: glowapp.callbacks.WarmStart
          init_args: {checkpoint: checkpoints/fashion-mnist.ckpt}
        - class_path: glowapp.callbacks.SampleQualityCallback
          init_args: {num_samples: 1000, temperature: 0.7}
"""

from glowapp.callbacks.checkpoint import GlowCheckpoint
from glowapp.callbacks.clock import TrainingClock
from glowapp.callbacks.ema import EMA
from glowapp.callbacks.inpainting import InpaintingCallback
from glowapp.callbacks.interpolation import InterpolationCallback
from glowapp.callbacks.manipulation import ManipulationCallback
from glowapp.callbacks.nonfinite import SkipNonFiniteSteps
from glowapp.callbacks.quality import SampleQualityCallback
from glowapp.callbacks.samples import ImageGridCallback, SampleGridCallback
from glowapp.callbacks.warm_start import WarmStart

__all__ = [
    "EMA",
    "GlowCheckpoint",
    "ImageGridCallback",
    "InpaintingCallback",
    "InterpolationCallback",
    "ManipulationCallback",
    "SampleGridCallback",
    "SampleQualityCallback",
    "SkipNonFiniteSteps",
    "TrainingClock",
    "WarmStart",
]
