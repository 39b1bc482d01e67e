"""glowapp's benchmarks: speed and memory (:mod:`bench.benchmark`), the side-by-side comparison
with rosinality/glow-pytorch (:mod:`bench.compare_reference`), bits/dim at fixed training time
(:mod:`bench.quality`) and long mixed-precision runs (:mod:`bench.stability`).

Run them from the repository root as modules (``python -m bench.benchmark``); they time
glowapp's own :class:`~glowapp.GlowModule` (:mod:`bench.workload`), never a copy of it.
"""
