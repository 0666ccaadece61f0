"""skxmr against every reference library: libpecos, Omikuji (Parabel and Bonsai
settings) and napkinXC (PLT), on the same data.

    python benchmarks/bench_references.py [--data debian-debtags delicious ...]
        [--threads 2] [--latency-queries 300] [--libraries skxmr libpecos ...]
        [--json results.json] [--plots DIR]

Each library runs in its own process: skxmr through bench_xrlinear.py's worker (this
interpreter), libpecos through envs/pecos_runner.py (venv envs/.pecos), Omikuji and
napkinXC through envs/refs_runner.py (venv envs/.refs); missing venvs are created with
envs/make_pecos_env.sh / envs/make_refs_env.sh. Rows of the Mulan-style sets are
L2-normalised for every library (bench_xrlinear.NORMALIZE).

Settings: skxmr and libpecos as in bench_xrlinear.py (B=16, leaf 100, beam 10, top 10,
threshold 0.1, tfn negatives, l3-hinge, C=1); Omikuji and napkinXC with their published
defaults (see envs/refs_runner.py). Same thread count for all.

Per dataset: a markdown table with P@1/3/5, nDCG@5, PSP@5 (propensities from the training
labels, A=0.55, B=1.5), fit seconds, batch top-10 predict seconds, one-query latency
(median of one-row predict calls from Python), peak RSS of the process (includes the
interpreter and library imports), peak RSS minus the peak after loading the data, and
model size on disk (skxmr: the pickled estimator); then skxmr / best reference for
fit, predict, latency and peak RSS (libpecos counted with its faster C++ predict-only model
for predict and latency). ``--plots DIR`` draws P@1 against fit time (PNG, matplotlib: this
interpreter's if it has it, else the refs venv's, from the saved JSON).
"""

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENVS = HERE / "envs"
PECOS_PYTHON = ENVS / ".pecos" / "bin" / "python"
REFS_PYTHON = ENVS / ".refs" / "bin" / "python"
SHARED = HERE.parents[1] / "shared" / "data"

LIBRARIES = ["skxmr", "libpecos", "omikuji-parabel", "omikuji-bonsai", "napkinxc-plt"]
REFERENCES = LIBRARIES[1:]
DEFAULT_DATA = ["debian-debtags", "delicious"]


def resolve(name):
    path = Path(name)
    if path.is_dir():
        return path.resolve()
    if (SHARED / name).is_dir():
        return SHARED / name
    raise SystemExit(f"no data folder {name!r} (nor {SHARED / name})")


def subprocess_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def command(library, folder, normalize, args):
    flags = ["--normalize"] if normalize else []
    common = ["--threads", str(args.threads), "--latency-queries", str(args.latency_queries),
              "--seed", str(args.seed), *flags]
    if library == "skxmr":
        return [sys.executable, str(HERE / "bench_xrlinear.py"), "--worker", str(folder),
                *common]
    if library == "libpecos":
        return [str(PECOS_PYTHON), str(ENVS / "pecos_runner.py"), "xlinear",
                "--data-dir", str(folder), "--nr-splits", "16", "--max-leaf-size", "100",
                "--beam-size", "10", "--threshold", "0.1", "--only-topk", "10", *common]
    return [str(REFS_PYTHON), str(ENVS / "refs_runner.py"), library, "--data-dir",
            str(folder), "--only-topk", "10", *common]


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


def fmt(value, digits):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def table(name, results):
    lines = [f"**{name}**", "",
             "| library | P@1 | P@3 | P@5 | nDCG@5 | PSP@5 | fit (s) | batch predict (s) | "
             "one query (ms) | peak RSS (MB) | RSS over data load (MB) | model (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for library, r in results.items():
        if "error" in r:
            lines.append(f"| {library} | failed: {r['error'].splitlines()[0][:80]} |"
                         + " |" * 10)
            continue
        predict = fmt(r["predict_seconds"], 3)
        latency = fmt(r["latency_ms_median"], 3)
        if library == "libpecos" and "predict_only_seconds" in r:
            predict += f" (predict-only {fmt(r['predict_only_seconds'], 3)})"
            latency += f" (predict-only {fmt(r['latency_predict_only_ms_median'], 3)})"
        lines.append(
            f"| {library} | {fmt(100 * r['P@1'], 2)} | {fmt(100 * r['P@3'], 2)} | "
            f"{fmt(100 * r['P@5'], 2)} | {fmt(100 * r['nDCG@5'], 2)} | "
            f"{fmt(100 * r['PSP@5'], 2)} | {fmt(r['fit_seconds'], 2)} | {predict} | "
            f"{latency} | {fmt(r['peak_rss_mb'], 0)} | {fmt(r.get('rss_growth_mb'), 0)} | "
            f"{fmt(r.get('model_size_mb'), 2)} |")
    ours = results.get("skxmr", {})
    refs = {lib: r for lib, r in results.items() if lib != "skxmr" and "error" not in r}
    if "error" not in ours and ours and refs:
        cells = []
        for label, key in (("fit", "fit_seconds"), ("batch predict", "predict_seconds_best"),
                           ("one query", "latency_ms_best"), ("peak RSS", "peak_rss_mb"),
                           ("RSS over data load", "rss_growth_mb")):
            best_lib = min(refs, key=lambda lib: refs[lib][key])
            if not refs[best_lib][key] > 0:
                continue
            cells.append(f"{label} {ours[key] / refs[best_lib][key]:.2f}x (vs {best_lib})")
        lines += ["", "skxmr / best reference: " + ", ".join(cells) + "."]
    return "\n".join(lines)


def ensure_envs(libraries):
    if "libpecos" in libraries and not PECOS_PYTHON.exists():
        subprocess.run(["bash", str(ENVS / "make_pecos_env.sh")], check=True)
    if any(lib.startswith(("omikuji", "napkinxc")) for lib in libraries) \
            and not REFS_PYTHON.exists():
        subprocess.run(["bash", str(ENVS / "make_refs_env.sh")], check=True)


def plot(results_path, out_dir):
    """P@1 against fit time, one PNG per dataset; needs matplotlib in this interpreter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = json.loads(Path(results_path).read_text())
    for name, results in data["results"].items():
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for library, r in results.items():
            if "error" in r:
                continue
            ax.scatter(r["fit_seconds"], 100 * r["P@1"], s=40,
                       marker="*" if library == "skxmr" else "o")
            ax.annotate(library, (r["fit_seconds"], 100 * r["P@1"]),
                        textcoords="offset points", xytext=(5, 3), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(f"fit time (s, {data['threads']} threads, log scale)")
        ax.set_ylabel("P@1 (%)")
        ax.set_title(f"{name}: P@1 vs fit time")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"p1_vs_fit_{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
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
                               capture_output=True)
        if probe.returncode == 0:
            subprocess.run([str(REFS_PYTHON), __file__, "--plot-from", str(results_path),
                            "--plots", str(out_dir)], check=True)
            return
    print("matplotlib is not installed (here nor in benchmarks/envs/.refs): no plots; "
          "run benchmarks/envs/make_refs_env.sh to get it")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA,
                        help="dataset names under shared/data, or folders")
    parser.add_argument("--libraries", nargs="+", default=LIBRARIES, choices=LIBRARIES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write all raw results to this JSON file")
    parser.add_argument("--plots", help="folder for PNG plots (needs matplotlib)")
    parser.add_argument("--plot-from", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plot_from:
        plot(args.plot_from, args.plots)
        return

    sys.path.insert(0, str(HERE))
    from bench_xrlinear import NORMALIZE

    ensure_envs(args.libraries)
    everything = {"threads": args.threads, "latency_queries": args.latency_queries,
                  "seed": args.seed, "results": {}}
    for name in args.data:
        folder = resolve(name)
        normalize = folder.name in NORMALIZE
        results = {}
        for library in args.libraries:
            try:
                raw = subprocess_json(command(library, folder, normalize, args))
                results[library] = normalise_result(library, raw)
            except Exception as exc:  # keep going: one failing library is still a result
                results[library] = {"error": str(exc)}
                print(f"{library} on {folder.name} failed:\n{exc}", file=sys.stderr)
        everything["results"][folder.name] = results
        print(table(folder.name + (" (rows L2-normalised)" if normalize else ""), results),
              end="\n\n", flush=True)

    if args.json or args.plots:
        path = Path(args.json) if args.json else Path(args.plots) / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(everything, indent=1))
        print(f"raw results: {path}")
    if args.plots:
        make_plots(path, args.plots)


if __name__ == "__main__":
    main()
