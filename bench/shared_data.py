"""The development data the bench scripts read by default: ../shared/data beside the repository (see its README.md)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CSI300_2015_2019 = SHARED_DATA / "cn_csi300_2015_2019"
