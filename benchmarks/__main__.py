"""Run the named benchmarks (default: all) one after the other and print their figures."""

from __future__ import annotations

import argparse
import asyncio
import importlib

BENCHMARKS = ("registration", "mailer", "confirmation", "system")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)}")
    names = parser.parse_args().names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        asyncio.run(module.run())


if __name__ == "__main__":
    main()
