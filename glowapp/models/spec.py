"""A flow as plain data and back: ``{"class_path": ..., "init_args": {...}}``.

Checkpoints store this spec (strings, numbers, lists: readable with ``weights_only=True``) so a
:class:`~glowapp.GlowModule` can rebuild its injected flow. It is the shape LightningCLI uses for
``model.flow`` in a config, so a checkpoint's spec can be pasted into one.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from glowapp.models.multiscale import MultiScaleFlow


def _plain(value: Any) -> Any:
    """Tuples (e.g. ``image_size=(28, 28)``) become lists; other values must be plain data."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"flow argument {value!r} is not plain data (str, number, bool, list, None)")


def flow_spec(flow: MultiScaleFlow) -> dict[str, Any]:
    """``{"class_path": "glowapp.models.glow.Glow", "init_args": {...}}`` for a built flow.

    ``init_args`` are the arguments its class was constructed with (see
    :attr:`MultiScaleFlow.init_args`), with the image size the flow now knows filled in.
    """
    cls = type(flow)
    if not flow.init_args:
        raise TypeError(
            f"{cls.__name__} has no recorded constructor arguments; inject a subclass of "
            "MultiScaleFlow (Glow, RealNVP, NICE or your own) rather than a bare MultiScaleFlow"
        )
    init_args = {k: _plain(v) for k, v in flow.init_args.items()}
    if "image_size" in init_args and flow.has_image_size:
        init_args["image_size"] = list(flow.image_size)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def build_flow(spec: Mapping[str, Any]) -> MultiScaleFlow:
    """The flow a :func:`flow_spec` describes.

    The class must be a :class:`MultiScaleFlow` subclass from a module that is already imported
    (``glowapp.models`` always is): a spec read from a checkpoint never imports code.

    Raises:
        ValueError: the spec is malformed, names an unknown or unimported class, or its
            arguments do not fit the class's constructor.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("class_path"), str):
        raise ValueError(f"a flow spec needs a 'class_path' string and 'init_args', got {spec!r}")
    module_name, _, name = spec["class_path"].rpartition(".")
    cls = getattr(sys.modules.get(module_name), name, None)
    if not (isinstance(cls, type) and issubclass(cls, MultiScaleFlow)):
        raise ValueError(
            f"flow class {spec['class_path']!r} is not an imported MultiScaleFlow subclass; "
            "import the module that defines it before loading"
        )
    init_args = dict(spec.get("init_args") or {})
    try:
        return cls(**init_args)
    except TypeError as err:
        raise ValueError(f"cannot build {spec['class_path']} from {init_args}: {err}") from None
