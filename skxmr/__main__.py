"""Command line: ``python -m skxmr demo`` (also the ``skxmr`` console script)."""

import argparse
import sys


def _demo(args):
    from skxmr._demo import run_demo

    run_demo(n_examples=args.examples)
    return 0


def _versions(args):
    from skxmr import show_versions

    show_versions()
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skxmr", description="Extreme multilabel ranking for scikit-learn."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train and evaluate on the bundled Debian debtags data"
    )
    demo.add_argument("--examples", type=int, default=3,
                      help="number of example predictions to print (default: 3)")
    demo.set_defaults(func=_demo)
    versions = commands.add_parser("versions", help="print versions and build info")
    versions.set_defaults(func=_versions)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
