"""Start Qlib once per process on a given data folder, without its recorder or caches."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

_current: tuple[str, str] | None = None  # (provider, region) of the last qlib.init
# Qlib log lines that say nothing an operator can act on in this pipeline, by logger
_EXPECTED_QLIB_LOGS = {
    # backtest_daily builds its executor without a common_infra and then gives it one
    "qlib.BaseExecutor": "`common_infra` is not set",
    # missing bars (suspensions, members without data) are NaN on purpose; the market checks report them
    "qlib.online operator": "field data contains nan",
}


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
    if _current is None:  # the first qlib.init of this process
        _quiet_qlib()
    qlib.init(
        provider_uri=provider,
        region=region,
        kernels=1,
        expression_cache=None,
        dataset_cache=None,
        logging_level=logging.WARNING,
    )
    _current = (provider, region)


def _quiet_qlib() -> None:
    """Drop Qlib's expected log lines, and import gym without the notice it prints on every import."""
    for logger, text in _EXPECTED_QLIB_LOGS.items():
        logging.getLogger(logger).addFilter(lambda record, text=text: text not in record.getMessage())
    # qlib.contrib imports qlib.rl, which imports gym 0.26; gym prints an "unmaintained" notice to stderr on
    # import. pyqlib 0.9.7 requires gym itself: the notice is for Qlib's authors, not for this pipeline's users.
    with contextlib.redirect_stderr(io.StringIO()):
        import gym  # noqa: F401
