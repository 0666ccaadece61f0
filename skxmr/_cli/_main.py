"""The ``skxmr`` argument parser and ``main``: one-line errors, exit codes,
warnings routed through :class:`~skxmr._cli._console.Console`."""

import argparse
import functools
import os
import sys
import warnings
from pathlib import Path

from skxmr._cli._console import CLIError, Console, progress_level

__all__ = ["build_parser", "main", "help_texts", "write_help_files"]

COMMANDS = ("demo", "train", "predict", "evaluate", "add-labels", "versions")


# ------------------------------------------------------------ option types
def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def _float_above(low, *, closed):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        if not (value >= low if closed else value > low) or value != value \
                or value == float("inf"):
            bound = f"at least {low}" if closed else f"greater than {low}"
            raise argparse.ArgumentTypeError(f"must be finite and {bound}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0 (-1: all CPUs)")
    return value


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")


# ------------------------------------------------------------ command funcs
def _demo(args, console):
    from skxmr._cli import _demo as demo

    demo.run_demo(n_examples=args.examples)
    return 0


def _versions(args, console):
    from skxmr import show_versions

    show_versions()
    return 0


def _train(args, console):
    from skxmr._cli._commands import train

    return train(args, console)


def _predict(args, console):
    from skxmr._cli._commands import predict

    return predict(args, console)


def _evaluate(args, console):
    from skxmr._cli._commands import evaluate

    return evaluate(args, console)


def _add_labels(args, console):
    from skxmr._cli._commands import add_labels

    return add_labels(args, console)


# ------------------------------------------------------------------- parser
_DATA_HELP = ("an XMC-format file, X.npz Y.npz (scipy sparse), or a .tsv file of "
              "'label,label<TAB>text' lines")
_EPILOG = ("Errors are one line 'skxmr %(prog_cmd)s: error: ...' on stderr, exit "
           "code 1 (2 for bad command-line usage). Warnings are one line "
           "'skxmr %(prog_cmd)s: warning: ...'; --quiet silences them.")


def _epilog(command):
    return _EPILOG % {"prog_cmd": command}


def _add_output_flags(command):
    flags = command.add_mutually_exclusive_group()
    flags.add_argument("-v", "--verbose", action="store_true",
                       help="progress bars on the long steps even when stderr is not "
                            "a terminal (default: only on a terminal)")
    flags.add_argument("-q", "--quiet", action="store_true",
                       help="no progress lines, bars or warnings, only errors "
                            "(default: off)")


def build_parser(width=None):
    """The ``skxmr`` parser; ``width`` fixes the help text's width (default:
    the terminal's)."""
    formatter = argparse.HelpFormatter
    if width is not None:
        formatter = functools.partial(argparse.HelpFormatter, width=width)
    parser = argparse.ArgumentParser(
        prog="skxmr", description="Extreme multilabel ranking for scikit-learn.",
        formatter_class=formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help, description):
        return commands.add_parser(name, help=help, description=description,
                                   epilog=_epilog(name), formatter_class=formatter)

    demo = add("demo", "train and evaluate on the bundled Debian debtags data",
               "Train TF-IDF + XRLinearClassifier on the bundled Debian debtags data "
               "(package descriptions and their tags), print P@1/3/5 on its test "
               "split next to a popularity baseline, and a few example predictions.")
    demo.add_argument("--examples", type=_int_at_least(0), default=3, metavar="N",
                      help="number of example predictions to print "
                           "(default: %(default)s)")
    demo.set_defaults(func=_demo)

    versions = add("versions", "print versions and build info",
                   "Print the versions of skxmr and its dependencies, and whether "
                   "the kernels were built with OpenMP.")
    versions.set_defaults(func=_versions)

    train = add("train", "train an XRLinearClassifier on DATA and save it",
                "Train an XRLinearClassifier (TF-IDF first for a .tsv of texts) and "
                "save it to a model directory.")
    train.add_argument("data", nargs="+", metavar="DATA", help=_DATA_HELP)
    train.add_argument("-o", "--output", required=True, metavar="MODEL",
                       help="model directory to write; an existing one is replaced "
                            "only when it is empty or a model written by "
                            "'skxmr train' (required)")
    tree = train.add_argument_group("label tree")
    tree.add_argument("--branching-factor", type=_int_at_least(2), default=16,
                      metavar="B", help="children per node of the label tree "
                                        "(default: %(default)s)")
    tree.add_argument("--max-leaf-size", type=_int_at_least(1), default=100,
                      metavar="N", help="at most this many labels per leaf cluster "
                                        "(default: %(default)s)")
    tree.add_argument("--n-estimators", type=_int_at_least(1), default=1, metavar="M",
                      help="trees of the ensemble, each with its own seed; their "
                           "top-k lists are merged (default: %(default)s)")
    tree.add_argument("--combination", default="average",
                      choices=["average", "rank", "softmax", "sigmoid"],
                      help="how an ensemble merges its trees' scores "
                           "(default: %(default)s)")
    linear = train.add_argument_group("linear models")
    linear.add_argument("--C", type=_float_above(0, closed=False), default=1.0,
                        help="inverse regularisation strength of each node's linear "
                             "model (default: %(default)s)")
    linear.add_argument("--loss", default="squared_hinge",
                        choices=["squared_hinge", "hinge", "log"],
                        help="loss of the linear models (default: %(default)s)")
    linear.add_argument("--negative-sampling", default="tfn",
                        choices=["tfn", "man", "tfn+man"],
                        help="negatives of each node: tfn = the parents of the true "
                             "labels, man = what the upper levels retrieve, tfn+man "
                             "= both (default: %(default)s)")
    linear.add_argument("--threshold", type=_float_above(0, closed=True), default=0.1,
                        help="drop weights below this magnitude "
                             "(default: %(default)s)")
    search = train.add_argument_group("prediction (saved in the model)")
    search.add_argument("--beam-size", type=_int_at_least(1), default=10, metavar="N",
                        help="tree nodes kept per level by the beam search "
                             "(default: %(default)s)")
    search.add_argument("--top-k", type=_int_at_least(1), default=10, metavar="K",
                        help="labels returned per row (default: %(default)s)")
    tfidf = train.add_argument_group("TF-IDF features (.tsv texts only)")
    tfidf.add_argument("--min-df", type=_int_at_least(1), default=2, metavar="N",
                       help="ignore terms in fewer than N documents "
                            "(default: %(default)s)")
    tfidf.add_argument("--max-features", type=_int_at_least(1), default=200_000,
                       metavar="N", help="keep the N most frequent terms "
                                         "(default: %(default)s)")
    tfidf.add_argument("--ngram-max", type=_int_at_least(1), default=2, metavar="N",
                       help="word n-grams from 1 to N (default: %(default)s)")
    tfidf.add_argument("--sublinear-tf", action=argparse.BooleanOptionalAction,
                       default=True, help="1 + log(tf) instead of tf "
                                          "(default: %(default)s)")
    run = train.add_argument_group("run")
    run.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                     help="threads (default: %(default)s = all CPUs; -1 all, -2 all "
                          "but one); the model does not depend on it")
    run.add_argument("--random-state", type=_int, default=0, metavar="SEED",
                     help="seed of the label tree and the solvers "
                          "(default: %(default)s)")
    _add_output_flags(train)
    train.set_defaults(func=_train)

    predict = add("predict", "write the top-k labels of each row of DATA",
                  "Write one line per row of DATA: 'label:score' pairs, best first. "
                  "A .tsv may hold plain texts (no tab on any line).")
    predict.add_argument("model", metavar="MODEL", help="model directory")
    predict.add_argument("data", nargs="+", metavar="DATA", help=_DATA_HELP)
    predict.add_argument("-o", "--output", required=True, metavar="OUT",
                         help="text file to write (required; checked before any "
                              "work)")
    predict.add_argument("-f", "--force", action="store_true",
                         help="replace OUT when it exists (never an input file) "
                              "(default: refuse)")
    predict.add_argument("--top-k", type=_int_at_least(1), default=None, metavar="K",
                         help="labels per row (default: the model's top_k)")
    _add_output_flags(predict)
    predict.set_defaults(func=_predict)

    evaluate = add("evaluate", "print P@k, R@k, nDCG@k and PSP@k of MODEL on DATA",
                   "Predict the top labels of each row of DATA with MODEL and print "
                   "precision, recall, nDCG and propensity-scored precision at each "
                   "k (in percent) on stdout, one line per metric.")
    evaluate.add_argument("model", metavar="MODEL", help="model directory")
    evaluate.add_argument("data", nargs="+", metavar="DATA",
                          help=_DATA_HELP + " (with labels)")
    evaluate.add_argument("-k", type=_int_at_least(1), nargs="+", default=[1, 3, 5],
                          metavar="K", help="the k of the metrics @k "
                                            "(default: 1 3 5)")
    _add_output_flags(evaluate)
    evaluate.set_defaults(func=_evaluate)

    grow = add("add-labels", "add the new labels of DATA to MODEL, without a refit",
               "Add the labels of DATA that MODEL does not know: each joins the leaf "
               "cluster its rows reach and gets its own linear model "
               "(XRLinearClassifier.add_labels); the old labels' models are kept. "
               "The result replaces MODEL unless -o is given.")
    grow.add_argument("model", metavar="MODEL", help="model directory")
    grow.add_argument("data", nargs="+", metavar="DATA",
                      help=_DATA_HELP + " (with labels; rows of old labels serve as "
                                        "negatives)")
    grow.add_argument("-o", "--output", default=None, metavar="OUT",
                      help="model directory to write (default: replace MODEL)")
    grow.add_argument("--refresh", default="none", choices=["none", "path"],
                      help="also retrain the cluster models above the new labels on "
                           "DATA (only when DATA is the training set) "
                           "(default: %(default)s)")
    _add_output_flags(grow)
    grow.set_defaults(func=_add_labels)
    return parser


def help_texts(columns=80):
    """``{command: the text of 'skxmr COMMAND --help'}`` in a terminal of
    ``columns`` columns (argparse leaves two of them free)."""
    parser = build_parser(width=columns - 2)
    subparsers = next(a for a in parser._actions
                      if isinstance(a, argparse._SubParsersAction))
    return {name: subparsers.choices[name].format_help() for name in COMMANDS}


def write_help_files(folder, columns=80):
    """Write ``COMMAND.txt`` (the ``--help`` text) for every command into
    ``folder``; doc/conf.py calls it so doc/cli.rst includes the real help."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in help_texts(columns).items():
        path = folder / f"{name}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------- main
def _os_error(exc):
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    return f"{where}{exc.strerror or exc}"


def main(argv=None):
    """Run ``skxmr`` with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    args = build_parser().parse_args(argv)
    console = Console(args.command, quiet=getattr(args, "quiet", False),
                      verbose=progress_level(args))
    with warnings.catch_warnings():
        if console.quiet:
            warnings.simplefilter("ignore")
        warnings.showwarning = console.show_warning
        try:
            return args.func(args, console)
        except CLIError as exc:
            console.error(exc)
        except KeyboardInterrupt:
            console.error("interrupted")
            return 130
        except MemoryError:
            console.error("out of memory")
        except OSError as exc:
            console.error(_os_error(exc))
        except Exception as exc:
            if os.environ.get("SKXMR_DEBUG"):
                raise
            console.error(f"unexpected {type(exc).__name__}: {exc} (set "
                          "SKXMR_DEBUG=1 to see the traceback)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
