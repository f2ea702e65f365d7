"""Start Qlib once per process on a given data folder, without its recorder or caches."""

from __future__ import annotations

import logging
from pathlib import Path

_current: tuple[str, str] | None = None  # (provider, region) of the last qlib.init


def init_qlib(provider_uri: str | Path, region: str = "cn") -> None:
    """`qlib.init` on `provider_uri` and `region` (Qlib's default is "cn") unless this process already has them.

    One worker and no expression/dataset cache: the pipeline runs on small machines and
    must never read a stale cache after a refresh. Qlib's in-memory cache is cleared on
    every call so a refreshed folder is read anew.
    """
    global _current
    import qlib

    provider = str(Path(provider_uri).resolve())
    if _current == (provider, region):
        from qlib.data.cache import H

        H.clear()
        return
    qlib.init(
        provider_uri=provider,
        region=region,
        kernels=1,
        expression_cache=None,
        dataset_cache=None,
        logging_level=logging.WARNING,
    )
    _current = (provider, region)
