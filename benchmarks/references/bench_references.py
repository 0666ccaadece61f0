"""skxmr against every reference library: libpecos, Omikuji (Parabel and Bonsai
settings) and napkinXC (PLT), on the same data.

The one command that reproduces the whole comparison (tables, JSON, plots):

    python -m benchmarks.references.bench_references --data all \\
        --synthetic 10000 100000 1000000 \\
        --json benchmarks/_cache/references.json --plots benchmarks/plots

Options:

--data NAME ...       datasets: names under shared/data, folders holding X.trn.npz,
                      Y.trn.npz, X.tst.npz, Y.tst.npz, or ``all`` (every folder of
                      shared/data that holds X.trn.npz). Default: debian-debtags delicious,
                      or none when --synthetic is given.
--synthetic L ...     also run on make_xmc_classification data with L labels (100,000
                      features, random_state=0; 50k / 100k / 200k training rows for 10k /
                      100k / 1M labels as in bench_scaling.py, else 2 L; the next 5,000 rows
                      are the test set). Generated once into benchmarks/_cache/synthetic-L/
                      and reused; its rows are L2-normalised by the generator already.
--libraries LIB ...   subset of skxmr libpecos omikuji-parabel omikuji-bonsai napkinxc-plt.
--threads N           threads for every library (default 2).
--latency-queries N   one-row predict calls for the latency median (default 300).
--timeout SECONDS     wall-clock limit per library and dataset (default 1800): the library's
                      whole process group is killed and the table says "timeout (> N s)".
                      A library that crashes (or is killed, e.g. out of memory) is reported
                      as failed with its last stderr line. The run goes on either way.
--json FILE           raw results, merged into FILE if it exists (a library's result on a
                      dataset replaces the old one; everything else is kept), so a run can be
                      split over several invocations. Written after every dataset.
--plots DIR           PNGs: p1_vs_fit_<dataset>.png (P@1 against fit time), and, from the
                      synthetic datasets in the JSON, latency_vs_labels.png (one-query
                      latency against the number of labels) and fit_vs_labels.png, both
                      log-log. Without --json the JSON goes to DIR/results.json.
--from-json FILE      run nothing: print the markdown tables of FILE (and draw --plots).

Each library runs in its own process: skxmr through bench_xrlinear.py's worker (this
interpreter), libpecos through references/pecos_runner.py (venv references/.pecos),
Omikuji and napkinXC through references/refs_runner.py (venv references/.refs); missing
venvs are created with references/make_pecos_env.sh / references/make_refs_env.sh. Rows of
the Mulan-style sets are L2-normalised for every library (_common.NORMALIZE; the TF-IDF sets debian-*,
reuters21578-modapte are unit rows already).

Settings: skxmr and libpecos as in bench_xrlinear.py (B=16, leaf 100, beam 10, top 10,
threshold 0.1, tfn negatives, l3-hinge, C=1); Omikuji and napkinXC with their published
defaults (see references/refs_runner.py). Same thread count for all.

Per dataset: a markdown table with P@1/3/5, nDCG@5, PSP@5 (propensities from the training
labels, A=0.55, B=1.5), fit seconds, batch top-10 predict seconds, one-query latency
(median of one-row predict calls from Python), peak RSS of the process (includes the
interpreter and library imports), peak RSS minus the peak after loading the data, and
model size on disk (skxmr: the pickled estimator); then skxmr / best reference for
fit, predict, latency and peak RSS (libpecos counted with its faster C++ predict-only model
for predict and latency), and skxmr minus the best reference in P@1 and P@5 (points).
The JSON also records the date, the command, the machine (cores, CPU model, RAM) and the
versions of skxmr, numpy, scipy, libpecos, omikuji and napkinxc. Plots use matplotlib:
this interpreter's if it has it, else the refs venv's.
"""

import argparse
import datetime
import json
import math
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks._common import (
    CACHE,
    NORMALIZE,
    PARTS,
    PECOS_PYTHON,
    REFS_PYTHON,
    REPO,
    SYNTHETIC_FEATURES,
    SYNTHETIC_SAMPLES,
    data_folder,
    ensure_env,
    module_command,
    shared_datasets,
)
from benchmarks.bench_scaling import N_TEST as SYNTHETIC_TEST
from benchmarks.references.refs_runner import package_versions

LIBRARIES = ["skxmr", "libpecos", "omikuji-parabel", "omikuji-bonsai", "napkinxc-plt"]
DEFAULT_DATA = ["debian-debtags", "delicious"]



# ----------------------------------------------------------------------------- datasets
def synthetic_sizes(n_labels, scale):
    n_train = SYNTHETIC_SAMPLES.get(n_labels, 2 * n_labels)
    return max(10, round(scale * n_train)), max(10, round(scale * SYNTHETIC_TEST))


def synthetic_folder(n_labels, scale):
    """The cached synthetic data folder, generated (in a child process) if missing."""
    name = f"synthetic-{n_labels}" + ("" if scale == 1 else f"-x{scale:g}")
    folder = CACHE / name
    if not folder.is_dir():
        n_train, n_test = synthetic_sizes(n_labels, scale)
        print(f"generating {folder} ({n_train} + {n_test} rows)", file=sys.stderr, flush=True)
        subprocess.run(module_command("benchmarks.references.bench_references",
                                      "--make-synthetic", n_labels, n_train, n_test, folder),
                       check=True, cwd=REPO)
    return folder


def write_synthetic(n_labels, n_train, n_test, folder):
    """Child: generate, split the last n_test rows off, save; rename when complete."""
    import scipy.sparse as sp

    from skxmr.datasets import make_xmc_classification

    X, Y = make_xmc_classification(n_train + n_test, SYNTHETIC_FEATURES, n_labels,
                                   random_state=0)
    matrices = (X[:n_train], Y[:n_train], X[n_train:], Y[n_train:])
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    for part, M in zip(PARTS, matrices):
        sp.save_npz(tmp / f"{part}.npz", sp.csr_matrix(M), compressed=False)
    params = {"n_samples": n_train + n_test, "n_features": SYNTHETIC_FEATURES,
              "n_labels": n_labels, "random_state": 0, "n_test": n_test}
    (tmp / "params.json").write_text(json.dumps(params))
    tmp.rename(folder)


def npz_shape(path):
    import numpy as np

    with np.load(path) as f:
        return [int(v) for v in f["shape"]]


def dataset_info(folder, normalized, synthetic):
    n_train, n_features = npz_shape(folder / "X.trn.npz")
    return {"folder": str(folder), "n_train": n_train, "n_test": npz_shape(folder / "X.tst.npz")[0],
            "n_features": n_features, "n_labels": npz_shape(folder / "Y.trn.npz")[1],
            "normalized": normalized, "synthetic": synthetic}


# ----------------------------------------------------------------------------- running
def command(library, folder, normalize, args):
    flags = ["--normalize"] if normalize else []
    common = ["--threads", str(args.threads), "--latency-queries", str(args.latency_queries),
              "--seed", str(args.seed), *flags]
    if library == "skxmr":
        return module_command("benchmarks.bench_xrlinear", "--worker", folder, *common)
    if library == "libpecos":
        return [*module_command("benchmarks.references.pecos_runner", python=PECOS_PYTHON),
                "xlinear", "--data-dir", str(folder), "--nr-splits", "16", "--max-leaf-size", "100",
                "--beam-size", "10", "--threshold", "0.1", "--only-topk", "10", *common]
    return [*module_command("benchmarks.references.refs_runner", python=REFS_PYTHON),
            library, "--data-dir",
            str(folder), "--only-topk", "10", *common]


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def failure_message(returncode, stderr):
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = f": {lines[-1]}" if lines else ""
    if returncode < 0:
        hint = " (out of memory?)" if returncode == -signal.SIGKILL else ""
        return f"killed by {signal.Signals(-returncode).name}{hint}{last}"
    return f"exit code {returncode}{last}"


def run_child(cmd, timeout):
    """Run cmd in its own process group; its JSON result, or {"error": ...}."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=REPO)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        return {"error": f"timeout (> {timeout:g} s)", "timeout_seconds": timeout}
    except BaseException:  # Ctrl-C: do not leave the library running
        kill_group(proc)
        raise
    if proc.returncode != 0:
        return {"error": failure_message(proc.returncode, err), "stderr_tail": err[-3000:]}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": "no JSON result on stdout", "stderr_tail": err[-3000:]}


def normalise_result(library, raw):
    """Common fields; metrics as fractions (pecos_runner reports P@k in percent)."""
    out = dict(raw)
    # Memory the model work added on top of interpreter + imports + data (peak RSS is
    # dominated by the import baseline on small sets: sklearn/scipy here, torch for libpecos).
    out["rss_growth_mb"] = raw["peak_rss_mb"] - raw.get("peak_rss_mb_after_load", math.nan)
    if library == "libpecos":
        for k in (1, 3, 5):
            out[f"P@{k}"] = raw[f"P@{k}"] / 100.0
        # The best libpecos numbers for prediction: its C++ predict-only model.
        out["predict_seconds_best"] = min(raw["predict_seconds"],
                                          raw.get("predict_only_seconds", math.inf))
        out["latency_ms_best"] = min(raw["latency_ms_median"],
                                     raw.get("latency_predict_only_ms_median", math.inf))
    else:
        out["predict_seconds_best"] = raw["predict_seconds"]
        out["latency_ms_best"] = raw["latency_ms_median"]
    return out


def run_library(library, folder, normalize, args):
    start = datetime.datetime.now()
    raw = run_child(command(library, folder, normalize, args), args.timeout)
    result = raw if "error" in raw else normalise_result(library, raw)
    if "error" in result:
        print(f"{library} on {folder.name}: {result['error']}", file=sys.stderr, flush=True)
    result.update(date=start.isoformat(timespec="seconds"), threads=args.threads,
                  latency_queries=args.latency_queries, seed=args.seed,
                  wall_seconds=(datetime.datetime.now() - start).total_seconds())
    return result


# ----------------------------------------------------------------------------- run record
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine():
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu": cpu_model(), "ram_gib": ram_gib(), "os": platform.platform()}


def venv_versions(python, runner):
    if not python.exists():
        return None
    out = run_child([*module_command(f"benchmarks.references.{runner}", python=python),
                     "versions"], timeout=120)
    return None if "error" in out else out


def versions():
    return {"skxmr env": package_versions(["skxmr", "numpy", "scipy", "scikit-learn"]),
            "pecos env": venv_versions(PECOS_PYTHON, "pecos_runner"),
            "refs env": venv_versions(REFS_PYTHON, "refs_runner")}


def load_json(path):
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text())
    return {"datasets": {}, "results": {}, "commands": []}


def merge_dataset(record, name, info, results):
    """A dataset's info is replaced; each library's result replaces that library's."""
    record.setdefault("datasets", {})[name] = info
    record.setdefault("results", {}).setdefault(name, {}).update(results)


def save_json(record, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


# ----------------------------------------------------------------------------- markdown
def fmt(value, digits):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def header(record):
    m = record.get("machine", {})
    v = record.get("versions", {})
    main, pecos, refs = (v.get(key) or {} for key in ("skxmr env", "pecos env", "refs env"))
    when = (f"Date: {record.get('date', '?')}; machine: {m.get('nproc', '?')} cores "
            f"({m.get('usable_cpus', '?')} usable), {m.get('cpu', '?')}, "
            f"{m.get('ram_gib', '?')} GiB RAM.")
    what = (f"Versions: skxmr {main.get('skxmr')}, numpy {main.get('numpy')}, "
            f"scipy {main.get('scipy')}, scikit-learn {main.get('scikit-learn')}; "
            f"libpecos {pecos.get('libpecos')} (numpy {pecos.get('numpy')}, "
            f"scipy {pecos.get('scipy')}); omikuji {refs.get('omikuji')}, "
            f"napkinxc {refs.get('napkinxc')} (numpy {refs.get('numpy')}, "
            f"scipy {refs.get('scipy')}).")
    lines = [when, what]
    lines += [f"Command: `{c['command']}` ({c['date']})" for c in record.get("commands", [])]
    return "\n".join(lines)


def title(name, info):
    if not info:
        return f"**{name}**"
    notes = (f"{info['n_train']:,} train / {info['n_test']:,} test rows, "
             f"{info['n_features']:,} features, {info['n_labels']:,} labels")
    if info.get("synthetic"):
        notes = "make_xmc_classification, " + notes
    if info.get("normalized"):
        notes += "; rows L2-normalised"
    return f"**{name}** ({notes})"


def result_row(library, r):
    if "error" in r:
        return f"| {library} | {r['error'][:120].replace('|', '/')} |" + " |" * 10
    predict = fmt(r["predict_seconds"], 3)
    latency = fmt(r["latency_ms_median"], 3)
    if library == "libpecos" and "predict_only_seconds" in r:
        predict += f" (predict-only {fmt(r['predict_only_seconds'], 3)})"
        latency += f" (predict-only {fmt(r['latency_predict_only_ms_median'], 3)})"
    return (f"| {library} | {fmt(100 * r['P@1'], 2)} | {fmt(100 * r['P@3'], 2)} | "
            f"{fmt(100 * r['P@5'], 2)} | {fmt(100 * r['nDCG@5'], 2)} | "
            f"{fmt(100 * r['PSP@5'], 2)} | {fmt(r['fit_seconds'], 2)} | {predict} | "
            f"{latency} | {fmt(r['peak_rss_mb'], 0)} | {fmt(r.get('rss_growth_mb'), 0)} | "
            f"{fmt(r.get('model_size_mb'), 2)} |")


def ratio_line(ours, refs):
    cells = []
    for label, key in RATIO_KEYS:
        value, best = best_ratio(ours, refs, key)
        if value is not None:
            cells.append(f"{label} {value:.2f}x (vs {best})")
    return "skxmr / best reference: " + ", ".join(cells) + "."


def skxmr_and_references(results):
    """skxmr's result and the references that ran, or (None, None) when there is
    nothing to compare (skxmr failed or missing, or no reference ran)."""
    ours = results.get("skxmr", {})
    refs = {lib: r for lib, r in results.items() if lib != "skxmr" and "error" not in r}
    if not ours or "error" in ours or not refs:
        return None, None
    return ours, refs


RATIO_KEYS = (("fit", "fit_seconds"), ("batch predict", "predict_seconds_best"),
              ("one query", "latency_ms_best"), ("peak RSS", "peak_rss_mb"),
              ("RSS over data load", "rss_growth_mb"))


def best_ratio(ours, refs, key):
    """(skxmr / the best reference, that reference) for a lower-is-better key."""
    best = min(refs, key=lambda lib: refs[lib][key])
    return (ours[key] / refs[best][key] if refs[best][key] > 0 else None), best


def best_difference(ours, refs, key):
    """(skxmr minus the best reference in points, that reference) for P@k."""
    best = max(refs, key=lambda lib: refs[lib][key])
    return 100 * (ours[key] - refs[best][key]), best


SINGLE_TREE = ("libpecos", "napkinxc-plt")


def summary_table(record):
    """One row per dataset: skxmr / best reference and P@1, P@5 differences."""
    lines = ["| dataset | " + " | ".join(label for label, _ in RATIO_KEYS)
             + " | P@1 (points) | P@5 (points) | P@1, P@5 vs single trees (points) |",
             "|---|" + "---:|" * 8]
    short = {"libpecos": "pecos", "omikuji-parabel": "parabel",
             "omikuji-bonsai": "bonsai", "napkinxc-plt": "plt"}
    for name, results in record["results"].items():
        ours, refs = skxmr_and_references(results)
        if ours is None:
            continue
        cells = []
        for _, key in RATIO_KEYS:
            value, lib = best_ratio(ours, refs, key)
            cells.append("-" if value is None else f"{value:.2f} ({short.get(lib, lib)})")
        for key in ("P@1", "P@5"):
            value, lib = best_difference(ours, refs, key)
            cells.append(f"{value:+.2f} ({short.get(lib, lib)})")
        # Omikuji's settings are 3-tree ensembles; libpecos and napkinXC one tree, like skxmr.
        single = {lib: r for lib, r in refs.items() if lib in SINGLE_TREE}
        cells.append(", ".join(f"{best_difference(ours, single, key)[0]:+.2f}"
                               for key in ("P@1", "P@5")) if single else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference_line(ours, refs):
    cells = []
    for key in ("P@1", "P@5"):
        value, best = best_difference(ours, refs, key)
        cells.append(f"{key} {value:+.2f} (vs {best})")
    return "skxmr - best reference (points): " + ", ".join(cells) + "."


TABLE_HEAD = ("| library | P@1 | P@3 | P@5 | nDCG@5 | PSP@5 | fit (s) | batch predict (s) | "
              "one query (ms) | peak RSS (MB) | RSS over data load (MB) | model (MB) |")


def in_order(libraries):
    """The names in ``libraries`` in LIBRARIES order, unknown ones last."""
    return ([lib for lib in LIBRARIES if lib in libraries]
            + [lib for lib in libraries if lib not in LIBRARIES])


def table(name, info, results):
    lines = [title(name, info), "", TABLE_HEAD, "|---|" + "---:|" * 11]
    lines += [result_row(library, results[library]) for library in in_order(results)]
    ours, refs = skxmr_and_references(results)
    if ours is not None:
        lines += ["", ratio_line(ours, refs), difference_line(ours, refs)]
    return "\n".join(lines)


def print_tables(record):
    for name in record["results"]:
        info = record.get("datasets", {}).get(name)
        print(table(name, info, record["results"][name]), end="\n\n", flush=True)
    print("**skxmr / best reference, per dataset** (ratios: lower is better for skxmr; "
          "points: skxmr minus the best reference)", "", summary_table(record), sep="\n",
          end="\n\n")


# ----------------------------------------------------------------------------- plots
COLORS = dict(zip(LIBRARIES, ["tab:red", "tab:blue", "tab:green", "tab:olive", "tab:purple"]))
MARKERS = dict(zip(LIBRARIES, ["*", "o", "s", "D", "^"]))


def style(library):
    return {"color": COLORS.get(library, "tab:gray"), "marker": MARKERS.get(library, "x"),
            "markersize": 12 if library == "skxmr" else 7}


def plain_log_ticks(ax, *axes):
    """Tick labels 0.3, 2, 10000 instead of 3x10^-1 on log axes; minor ticks are
    labelled at 2 and 5 times a power of ten only, so the labels do not overlap."""
    import math

    from matplotlib.ticker import FuncFormatter

    def minor(value, _):
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0
        return f"{value:g}" if mantissa in (2, 5) else ""

    for axis in axes:
        getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        getattr(ax, f"{axis}axis").set_minor_formatter(FuncFormatter(minor))


def save_figure(plt, fig, ax, path):
    """Grid, legend, tight layout; write the PNG and free the figure."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_p1_vs_fit(plt, name, results, threads, path):
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for library, r in results.items():
        if "error" not in r:
            ax.plot(r["fit_seconds"], 100 * r["P@1"], linestyle="none", label=library,
                    **style(library))
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    ax.set_xlabel(f"fit time (s, {threads} threads, log scale)")
    ax.set_ylabel("P@1 (%)")
    ax.set_title(f"{name}: P@1 vs fit time")
    save_figure(plt, fig, ax, path)


def label_curves(record, key):
    """{library: [(n_labels, value), ...]} over the synthetic datasets, sorted by labels."""
    curves = {}
    for name, info in record.get("datasets", {}).items():
        if not info.get("synthetic"):
            continue
        for library, r in record["results"].get(name, {}).items():
            if "error" not in r and r.get(key) is not None:
                curves.setdefault(library, []).append((info["n_labels"], r[key]))
    return {lib: sorted(points) for lib, points in curves.items()}


def plot_vs_labels(plt, record, key, ylabel, title_text, path):
    curves = label_curves(record, key)
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for library in in_order(curves):
        xs, ys = zip(*curves[library])
        label = library
        if library == "libpecos" and key == "latency_ms_best":
            label += " (C++ predict-only)"
        ax.plot(xs, ys, label=label, **style(library))
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("number of labels (make_xmc_classification, log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title_text)
    save_figure(plt, fig, ax, path)
    return True


def plot(results_path, out_dir):
    """All PNGs from a saved JSON; needs matplotlib in this interpreter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = json.loads(Path(results_path).read_text())
    threads = record.get("threads", "?")
    written = []
    for name, results in record["results"].items():
        path = out_dir / f"p1_vs_fit_{name}.png"
        plot_p1_vs_fit(plt, name, results, threads, path)
        written.append(path)
    path = out_dir / "latency_vs_labels.png"
    if plot_vs_labels(plt, record, "latency_ms_best", "one-query latency (ms, log scale)",
                      "One-query latency vs number of labels", path):
        written.append(path)
    path = out_dir / "fit_vs_labels.png"
    if plot_vs_labels(plt, record, "fit_seconds",
                      f"fit time (s, {threads} threads, log scale)",
                      "Fit time vs number of labels", path):
        written.append(path)
    for path in written:
        print(f"wrote {path}")


def make_plots(results_path, out_dir):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        plot(results_path, out_dir)
        return
    if REFS_PYTHON.exists():
        probe = subprocess.run([str(REFS_PYTHON), "-c", "import matplotlib"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            subprocess.run([*module_command("benchmarks.references.bench_references",
                                            python=REFS_PYTHON),
                            "--plot-from", str(results_path), "--plots", str(out_dir)],
                           check=True, cwd=REPO)
            return
    print("matplotlib is not installed (here nor in benchmarks/references/.refs): no "
          "plots; run benchmarks/references/make_refs_env.sh to get it")


# ----------------------------------------------------------------------------- main
def ensure_envs(libraries):
    if "libpecos" in libraries:
        ensure_env(PECOS_PYTHON)
    if any(lib.startswith(("omikuji", "napkinxc")) for lib in libraries):
        ensure_env(REFS_PYTHON)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+",
                        help="dataset names under shared/data, folders, or 'all'")
    parser.add_argument("--synthetic", nargs="+", type=int, default=[], metavar="N_LABELS",
                        help="make_xmc_classification sets with these label counts")
    parser.add_argument("--synthetic-samples", type=float, default=1.0,
                        help=argparse.SUPPRESS)  # scale factor on the train and test rows
    parser.add_argument("--libraries", nargs="+", default=LIBRARIES, choices=LIBRARIES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds per library and dataset (default 1800)")
    parser.add_argument("--json", help="merge the raw results into this JSON file")
    parser.add_argument("--plots", help="folder for PNG plots (needs matplotlib)")
    parser.add_argument("--from-json", help="print tables (and --plots) from a saved JSON")
    parser.add_argument("--plot-from", help=argparse.SUPPRESS)
    parser.add_argument("--make-synthetic", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args()


def datasets_to_run(args):
    """[(folder, synthetic)] in run order: the --data sets, then the synthetic ones."""
    names = args.data if args.data is not None else ([] if args.synthetic else DEFAULT_DATA)
    if "all" in names:
        names = shared_datasets() + [n for n in names if n != "all"]
    jobs = [(data_folder(name), False) for name in dict.fromkeys(names)]
    return jobs + [(n_labels, True) for n_labels in args.synthetic]


def run(args):
    ensure_envs(args.libraries)
    json_path = Path(args.json) if args.json else (
        Path(args.plots) / "results.json" if args.plots else None)
    record = load_json(json_path) if json_path else {"datasets": {}, "results": {}}
    now = datetime.datetime.now().isoformat(timespec="seconds")
    record.update(date=now, machine=machine(), versions=versions(), threads=args.threads,
                  latency_queries=args.latency_queries, seed=args.seed)
    record.setdefault("commands", []).append(
        {"date": now, "command": " ".join(
            ["python -m benchmarks.references.bench_references", *map(str, sys.argv[1:])])})
    print(header(record), end="\n\n", flush=True)
    for item, synthetic in datasets_to_run(args):
        folder = synthetic_folder(item, args.synthetic_samples) if synthetic else item
        normalize = folder.name in NORMALIZE
        info = dataset_info(folder, normalize, synthetic)
        results = {lib: run_library(lib, folder, normalize, args) for lib in args.libraries}
        print(table(folder.name, info, results), end="\n\n", flush=True)
        merge_dataset(record, folder.name, info, results)
        if json_path:
            save_json(record, json_path)
    if json_path:
        print(f"raw results: {json_path}")
    if args.plots:
        make_plots(json_path, args.plots)


def main():
    args = parse_args()
    if args.plot_from:
        plot(args.plot_from, args.plots)
    elif args.make_synthetic:
        n_labels, n_train, n_test, folder = args.make_synthetic
        write_synthetic(int(n_labels), int(n_train), int(n_test), folder)
    elif args.from_json:
        if not Path(args.from_json).is_file():
            raise SystemExit(f"no such JSON file: {args.from_json}")
        record = load_json(args.from_json)
        print(header(record), end="\n\n")
        print_tables(record)
        if args.plots:
            make_plots(args.from_json, args.plots)
    else:
        run(args)


if __name__ == "__main__":
    main()
