"""Loggers that never need an account or a network."""

from __future__ import annotations

import netrc
import os
from typing import Any

from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger


def wandb_credentials_available() -> bool:
    """True if an API key is configured (``WANDB_API_KEY`` or an ``api.wandb.ai`` entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger``, offline unless credentials exist or ``offline=False`` is forced.

    ``offline=None`` (default) decides automatically: online with an API key, otherwise offline
    (runs are written under ``save_dir/wandb`` and can be uploaded later with ``wandb sync``).
    ``WANDB_MODE`` set in the environment wins, as in wandb itself.
    """

    def __init__(self, offline: bool | None = None, **kwargs: Any) -> None:
        if offline is None:
            offline = (
                os.environ.get("WANDB_MODE") in ("offline", "disabled")
                or not wandb_credentials_available()
            )
        super().__init__(offline=offline, **kwargs)
