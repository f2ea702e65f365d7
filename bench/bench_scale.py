"""The pipeline's stages on a synthetic market of all A-shares' size: wall time and peak memory of each.

    .venv/bin/python bench/bench_scale.py [--instruments 5000] [--years 5] [--epochs 2] [--threads 1]

A synthetic market of `--instruments` names over `--years` years from 2020 (market `all`: every
name with data) is generated, then each stage runs in its own child process, which reports its
wall time and its own peak RSS (ru_maxrss, so file pages the OS caches are not counted, mapped ones
would be): the Alpha360 features of every day, the labels, one KRNN version (train: every year but
the last two, valid: the year before the last, Qlib's benchmark dims, `--epochs` epochs without early
stop) and the signals of the last year. Everything lives in a temporary folder, removed at the end
(about 20 GB at the full size: the DuckDB file and the training windows' row files).
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIRST_YEAR = 2020
MARKET = "all"
KWARGS = {  # Qlib's benchmark dims (examples/benchmarks/KRNN), early stopping on IC as configs/csi300_2015_2019.yaml
    "fea_dim": 6, "cnn_dim": 8, "cnn_kernel_size": 3, "rnn_dim": 8, "rnn_dups": 2, "rnn_layers": 2,
    "lr": 0.001, "batch_size": 2000, "metric": "ic", "GPU": 0, "seed": 0,
}  # fmt: skip


def peak_gib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def year_days(provider: Path, year: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last trading day of a year of the folder's calendar."""
    from krnn_core.data import qlib_store

    days = qlib_store.read_calendar(provider)
    days = days[days.year == year]
    return days[0], days[-1]


def generate(args: argparse.Namespace, work: Path) -> dict:
    """The synthetic Qlib folder through the last day of the last year."""
    from krnn_core.data.synthetic import SyntheticMarket, write_market

    market = SyntheticMarket(
        start=f"{FIRST_YEAR}-01-02", n_instruments=args.instruments, n_members=min(300, args.instruments)
    )
    summary = write_market(work / "qlib_data", market, f"{FIRST_YEAR + args.years - 1}-12-31")
    return {"days": summary.days, "bars": summary.rows}


def features(args: argparse.Namespace, work: Path) -> dict:
    """alpha360_features of every day, as one backfill run."""
    from krnn_core.features.store import materialize_features
    from krnn_core.warehouse import connect

    first, last = year_days(work / "qlib_data", FIRST_YEAR)[0], year_days(work / "qlib_data", _last_year(args))[1]
    with connect(work / "bench.duckdb") as con:
        return {"rows": materialize_features(con, work / "qlib_data", MARKET, first, last)}


def labels(args: argparse.Namespace, work: Path) -> dict:
    """alpha360_labels of every day, as one backfill run."""
    from krnn_core.features.store import materialize_labels
    from krnn_core.warehouse import connect

    first, last = year_days(work / "qlib_data", FIRST_YEAR)[0], year_days(work / "qlib_data", _last_year(args))[1]
    with connect(work / "bench.duckdb") as con:
        return {"rows": materialize_labels(con, work / "qlib_data", MARKET, first, last).rows}


def train(args: argparse.Namespace, work: Path) -> dict:
    """One model version for the last year, trained as the krnn_model asset does it."""
    import torch

    from krnn_core.data import qlib_store
    from krnn_core.model.retraining import load_training_data, rolling_windows, scratch_folder, train_model_version
    from krnn_core.model.versions import record_model_versions
    from krnn_core.warehouse import connect

    last = _last_year(args)
    segments = {
        "train": (f"{FIRST_YEAR}-01-01", f"{last - 2}-12-31"),
        "valid": (f"{last - 1}-01-01", f"{last - 1}-12-31"),
    }
    segments["test"] = (f"{last}-01-01", f"{last}-12-31")
    calendar = qlib_store.read_calendar(work / "qlib_data", future=True)
    windows = rolling_windows(calendar, pd.Timestamp(segments["test"][0]), segments, "sliding")
    kwargs = KWARGS | {"n_epochs": args.epochs, "early_stop": args.epochs}
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with scratch_folder(work / "models") as scratch:
        with connect(work / "bench.duckdb", read_only=True) as con:
            train_data, valid_data = load_training_data(con, windows, scratch)
        loaded = time.perf_counter() - started
        row = train_model_version(train_data, valid_data, work / "models", windows, kwargs, log=_stderr)
    with connect(work / "bench.duckdb") as con:
        record_model_versions(con, [row])
    epochs = json.loads(row["history_json"])
    return {
        "load_s": loaded,
        "epoch_s": [round(epoch["seconds"], 1) for epoch in epochs],
        "n_train": row["n_train"],
        "n_valid": row["n_valid"],
        "valid_ic": row["valid_ic"],
        "device": row["device"],
    }


def signals(args: argparse.Namespace, work: Path) -> dict:
    """The signals of every day of the last year, as one backfill run."""
    import torch

    from krnn_core.signals.scoring import score_days, write_signals
    from krnn_core.warehouse import connect

    first, last = year_days(work / "qlib_data", _last_year(args))
    torch.set_num_threads(args.threads)
    with connect(work / "bench.duckdb") as con:
        return {"rows": write_signals(con, score_days(con, first, last), first, last)}


STAGES = {"generate": generate, "features": features, "labels": labels, "train": train, "signals": signals}


def _last_year(args: argparse.Namespace) -> int:
    return FIRST_YEAR + args.years - 1


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_stage(args: argparse.Namespace) -> None:
    """As a child: run one stage and write its wall time, peak RSS and figures to <work>/<stage>.json."""
    started = time.perf_counter()
    report = STAGES[args.stage](args, args.work)
    report |= {"seconds": time.perf_counter() - started, "peak_gib": peak_gib()}
    (args.work / f"{args.stage}.json").write_text(json.dumps(report))


def child(stage: str, args: argparse.Namespace, work: Path) -> dict:
    """Run one stage in a fresh Python process and return what it reported."""
    command = [sys.executable, __file__, "--stage", stage, "--work", str(work), "--instruments", str(args.instruments)]
    command += ["--years", str(args.years), "--epochs", str(args.epochs), "--threads", str(args.threads)]
    subprocess.run(command, check=True, cwd=ROOT)
    report = json.loads((work / f"{stage}.json").read_text())
    print(f"{stage} {report}", file=sys.stderr, flush=True)
    return report


def summary(args: argparse.Namespace, work: Path) -> dict:
    """Every stage in turn, then the figures of each."""
    reports = {stage: child(stage, args, work) for stage in STAGES}
    figures = {"instruments": args.instruments, "years": args.years, "epochs": args.epochs, "threads": args.threads}
    for stage, report in reports.items():
        figures |= {f"{stage}_s": round(report["seconds"], 1), f"{stage}_peak_gib": round(report["peak_gib"], 2)}
    train_report = reports["train"]
    figures |= {"feature_rows": reports["features"]["rows"], "label_rows": reports["labels"]["rows"]}
    figures |= {key: train_report[key] for key in ("n_train", "n_valid", "epoch_s", "valid_ic", "device")}
    figures |= {"train_load_s": round(train_report["load_s"], 1), "signal_rows": reports["signals"]["rows"]}
    figures["duckdb_gib"] = round((work / "bench.duckdb").stat().st_size / 2**30, 2)
    return figures


def main() -> None:
    """Parse the arguments; as the parent, run every stage and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=5000)
    parser.add_argument("--years", type=int, default=5, help="at least 3: train, valid and the signals' year")
    parser.add_argument("--epochs", type=int, default=2)
    # one: with other work on this 2-core machine, PyTorch's two threads made a training step 30x slower
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads of the train and signals stages")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.years < 3:
        parser.error("--years must be at least 3")
    if args.stage:
        run_stage(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        print(json.dumps(summary(args, Path(folder))))


if __name__ == "__main__":
    main()
