"""`krnn-signals`: run the demo and read signals and reports from DuckDB."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from krnn_core.warehouse import connect
from krnn_signals.config import load_config


def top_signals(day: str | None, top: int) -> pd.DataFrame:
    """The `top` best-ranked signals of a day (default: the last day with signals)."""
    with connect(load_config().duckdb_path, read_only=True) as con:
        last = con.execute("SELECT max(datetime) FROM signals").fetchone()[0]
        if last is None:
            raise SystemExit("no signals stored yet: run `make demo` or materialize the signals asset")
        wanted = pd.Timestamp(day).date() if day else last
        frame = con.execute(
            "SELECT datetime, rank, instrument, score, model_version FROM signals WHERE datetime = ? ORDER BY rank LIMIT ?",
            [wanted, top],
        ).df()
        if frame.empty:
            nearest = con.execute(
                "SELECT datetime FROM signals GROUP BY datetime ORDER BY abs(datediff('day', datetime, ?::DATE)) LIMIT 1",
                [wanted],
            ).fetchone()[0]
            raise SystemExit(f"no signals for {wanted}; the nearest day with signals is {nearest}")
    return frame


def report_summary() -> str:
    """IC / Rank IC / ICIR and the backtest's excess return, as stored by the report assets."""
    with connect(load_config().duckdb_path, read_only=True) as con:
        ic = con.execute("SELECT * FROM ic_summary").df()
        backtest = con.execute("SELECT * FROM backtest_summary ORDER BY metric").df()
    lines = [f"IC and Rank IC over {_day(ic.start_date[0])}..{_day(ic.end_date[0])} ({ic.days[0]} days):"]
    lines += [f"  {name:<10} {ic[name][0]: .4f}" for name in ("ic", "icir", "rank_ic", "rank_icir")]
    lines.append(f"Backtest over {_day(backtest.start_date[0])}..{_day(backtest.end_date[0])}:")
    lines += [f"  {row.metric:<55} {row.value: .4f}" for row in backtest.itertuples()]
    return "\n".join(lines)


def _day(value) -> str:
    return str(pd.Timestamp(value).date())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="krnn-signals", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("signals", help="the best-ranked signals of a day")
    show.add_argument("--date", help="YYYY-MM-DD, default: the last day with signals")
    show.add_argument("--top", type=int, default=20)
    show.add_argument("--format", choices=["table", "csv", "json"], default="table")
    commands.add_parser("report", help="IC, ICIR and backtest summary")
    commands.add_parser("demo", help="materialize the whole chain through Dagster, then print the results")
    args = parser.parse_args(argv)
    if args.command == "demo":
        _demo()
    elif args.command == "signals":
        frame = top_signals(args.date, args.top)
        print({"table": frame.to_string(index=False), "csv": frame.to_csv(index=False),
               "json": frame.to_json(orient="records", date_format="iso", double_precision=15)}[args.format])
    else:
        print(report_summary())


def _demo() -> None:
    import dagster as dg

    from krnn_signals.demo import demo_last_day, materialize_chain

    with dg.DagsterInstance.get() as instance:
        materialize_chain(instance, demo_last_day())
    print(f"\nTop 20 signals of the last trading day:\n{top_signals(None, 20).to_string(index=False)}\n")
    print(report_summary())


if __name__ == "__main__":
    sys.exit(main())
