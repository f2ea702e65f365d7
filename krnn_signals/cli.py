"""`krnn-signals`: read signals, IC and models from the warehouse's last committed snapshot; run the demo."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import pandas as pd

from krnn_core.config import PipelineConfig, load_config, warehouse_location
from krnn_core.signals import queries as signal_queries
from krnn_core.signals.read_snapshot import open_snapshot


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="krnn-signals", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("signals", help="a day's best-ranked signals")
    show.add_argument("--date", type=_date, help="YYYY-MM-DD; default: the last day with signals")
    show.add_argument("--top", type=int, default=20)
    show.add_argument("--format", choices=["table", "csv", "json"], default="table")
    for name, text in (("ic", "IC, ICIR, Rank IC, Rank ICIR over a window"), ("report", "IC and backtest summary")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--start", type=_date)
        command.add_argument("--end", type=_date)
    commands.choices["report"].add_argument("--html", type=Path, help="also write a self-contained HTML report")
    commands.add_parser("models", help="the recorded model versions")
    export = commands.add_parser("export", help="the scores as Qlib's pred.pkl")
    export.add_argument("output", type=Path)
    export.add_argument("--start", type=_date)
    export.add_argument("--end", type=_date)
    commands.add_parser("demo", help="materialize the whole chain through Dagster, then print the results")
    search = commands.add_parser(
        "search", help="search KRNN's kwargs on a retraining period's valid Rank IC, then retrain its model"
    )
    search.add_argument("--period", required=True, help="the retraining period (a krnn_model partition, YYYY-MM-DD)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command not in ("demo", "search"):
        return _print_answer(load_config(), args)
    from krnn_signals.demo import run_demo, run_model_search  # dagster and the code location (loads the config once)

    if args.command == "search":
        return _print_answer(run_model_search(args.period), args)
    config = run_demo()
    for command in (["signals", "--top", "20"], ["report"]):
        _print_answer(config, _parser().parse_args(command))


def _print_answer(config: PipelineConfig, args: argparse.Namespace) -> None:
    """Print one command's answer from the last committed snapshot of `config`'s warehouse."""
    with open_snapshot(warehouse_location(config)) as con:
        try:
            print(_answer(con, args))
        except signal_queries.NoSignals as error:
            raise SystemExit(str(error)) from None


def _answer(con, args: argparse.Namespace) -> str:
    """The text one command prints."""
    if args.command == "signals":
        frame = signal_queries.top_signals(con, args.date, args.top)
        frame["datetime"] = pd.to_datetime(frame["datetime"]).dt.strftime("%Y-%m-%d")
        formats = {"table": lambda: frame.to_string(index=False), "csv": lambda: frame.to_csv(index=False).rstrip()}
        return formats.get(args.format, lambda: json.dumps(frame.to_dict("records")))()
    if args.command == "ic":
        return _lines(signal_queries.ic_over(con, args.start, args.end))
    if args.command == "models":
        return signal_queries.model_table(con).to_string(index=False)
    if args.command == "search":
        return signal_queries.latest_search(con).to_string(index=False)
    if args.command == "export":
        rows = signal_queries.export_qlib_predictions(con, args.start, args.end, args.output)
        return f"wrote {rows} scores to {args.output}"
    return _report(con, args)


def _report(con, args: argparse.Namespace) -> str:
    """IC over the window and the stored backtest summary; optionally the HTML report."""
    backtest = con.execute("SELECT metric, value FROM backtest_summary ORDER BY metric").fetchall()
    text = "IC\n" + _lines(signal_queries.ic_over(con, args.start, args.end)) + "\nBacktest\n" + _lines(dict(backtest))
    if args.html:
        from krnn_core.reports.html import write_html_report

        write_html_report(con, args.start, args.end, args.html)
        text += f"\nwrote {args.html}"
    return text


def _lines(figures: dict) -> str:
    return "\n".join(
        f"  {key:<45} {value: .4f}" if isinstance(value, float) else f"  {key:<45} {value}"
        for key, value in figures.items()
    )


if __name__ == "__main__":
    sys.exit(main())
