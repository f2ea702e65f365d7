"""The default code location: the market of $KRNN_CONFIG, else configs/default.yaml, loaded once; what `make demo`,
`make serve CONFIG=...` and the CLI run on. Other markets' locations are krnn_signals.markets'."""

from krnn_core.config import load_config
from krnn_signals.code_location import build_definitions

CONFIG = load_config()
defs = build_definitions(CONFIG)
