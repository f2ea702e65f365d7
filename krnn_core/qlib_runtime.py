"""Start Qlib once per process on a given data folder, without its recorder or caches."""

from __future__ import annotations

import logging
from pathlib import Path

_current_provider: str | None = None


def init_qlib(provider_uri: str | Path) -> None:
    """`qlib.init` on `provider_uri` unless this process already reads that folder.

    One worker and no expression/dataset cache: the pipeline runs on small machines and
    must never read a stale cache after a refresh. Qlib's in-memory cache is cleared on
    every call so a refreshed folder is read anew.
    """
    global _current_provider
    import qlib

    provider = str(Path(provider_uri).resolve())
    if _current_provider == provider:
        from qlib.data.cache import H

        H.clear()
        return
    qlib.init(
        provider_uri=provider,
        region="cn",
        kernels=1,
        expression_cache=None,
        dataset_cache=None,
        logging_level=logging.WARNING,
    )
    _current_provider = provider
