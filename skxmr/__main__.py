"""Command line: ``skxmr`` (also ``python -m skxmr``): demo, train, predict,
evaluate, versions. See :mod:`skxmr._cli` for the file formats and exit codes."""

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
    _add_file_commands(commands)
    return parser


_DATA_HELP = ("an XMC-format file, X.npz Y.npz (scipy sparse), or a .tsv file of "
              "'label,label<TAB>text' lines")


def _add_output_flags(command):
    flags = command.add_mutually_exclusive_group()
    flags.add_argument("-v", "--verbose", action="store_true",
                       help="progress bars on the long steps even when stderr is not "
                            "a terminal (default: only on a terminal)")
    flags.add_argument("-q", "--quiet", action="store_true",
                       help="no progress lines or bars")


def _add_file_commands(commands):
    from skxmr import _cli

    train = commands.add_parser(
        "train", help="train an XRLinearClassifier on DATA and save it",
        description="Train an XRLinearClassifier (TF-IDF first for a .tsv of texts) "
                    "and save it to a model directory.")
    train.add_argument("data", nargs="+", metavar="DATA", help=_DATA_HELP)
    train.add_argument("-o", "--output", required=True, metavar="MODEL",
                       help="model directory to write")
    train.add_argument("--branching-factor", type=int, default=16)
    train.add_argument("--max-leaf-size", type=int, default=100)
    train.add_argument("--C", type=float, default=1.0)
    train.add_argument("--loss", default="squared_hinge",
                       choices=["squared_hinge", "hinge", "log"])
    train.add_argument("--negative-sampling", default="tfn",
                       choices=["tfn", "man", "tfn+man"])
    train.add_argument("--threshold", type=float, default=0.1,
                       help="drop weights below this magnitude (default: 0.1)")
    train.add_argument("--beam-size", type=int, default=10)
    train.add_argument("--top-k", type=int, default=10)
    train.add_argument("--n-jobs", type=int, default=None)
    train.add_argument("--random-state", type=int, default=0)
    _add_output_flags(train)
    train.set_defaults(func=_cli.train)

    predict = commands.add_parser(
        "predict", help="write the top-k labels of each row of DATA",
        description="Write one line per row of DATA: 'label:score' pairs, best first.")
    predict.add_argument("model", metavar="MODEL", help="model directory")
    predict.add_argument("data", nargs="+", metavar="DATA", help=_DATA_HELP)
    predict.add_argument("-o", "--output", required=True, metavar="OUT",
                         help="text file to write")
    predict.add_argument("--top-k", type=int, default=None,
                         help="labels per row (default: the model's top_k)")
    _add_output_flags(predict)
    predict.set_defaults(func=_cli.predict)

    evaluate = commands.add_parser(
        "evaluate", help="print P@k, R@k, nDCG@k and PSP@k of MODEL on DATA")
    evaluate.add_argument("model", metavar="MODEL", help="model directory")
    evaluate.add_argument("data", nargs="+", metavar="DATA", help=_DATA_HELP)
    evaluate.add_argument("-k", type=int, nargs="+", default=[1, 3, 5])
    _add_output_flags(evaluate)
    evaluate.set_defaults(func=_cli.evaluate)


def main(argv=None):
    from skxmr._cli import CLIError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"skxmr {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
