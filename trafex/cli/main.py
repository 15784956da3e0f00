"""trafex: the sensor, the enforcer and the lab (``trafex detect|enforce|lab …``)."""

from __future__ import annotations

import argparse
import sys

from trafex.cli import detect, enforce, lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trafex",
        description="trafex tools; see 'trafex COMMAND --help'.",
        epilog="example:\n  trafex detect --pcap traffic.pcap --blocklist bad.txt --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    detect.add_parser(sub)
    enforce.add_parser(sub)
    lab.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "lab":
        return lab.run(args)
    if args.command == "enforce":
        return enforce.run(args)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
