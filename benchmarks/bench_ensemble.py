"""Tree ensembles: choose their defaults on validation splits, then report on test sets.

Two modes, run in this order:

``--select``
    For each data set, the training split is cut again (80% fit, 20% validation,
    seeded); the test split is never read. An ensemble of ``--n-estimators`` trees
    is fitted once per ``diversity``; every ``combination`` and candidate factor is
    scored on the validation rows (the combination is a prediction-time setting).
    The defaults of ``XRLinearClassifier`` were chosen from this table.

``--report``
    With the defaults fixed: the single tree and the ensemble fitted on the
    training split and scored on the test split, with fit and predict times, and
    the reference libraries (Omikuji's Parabel and Bonsai settings, 3 trees each;
    napkinXC's PLT) run in their own venv on the same data (``--refs``; needs
    ``benchmarks/references/make_refs_env.sh``), all in one run.

    python -m benchmarks.bench_ensemble --select --data debian-debtags bibtex
    python -m benchmarks.bench_ensemble --report --data debian-debtags --refs
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

from benchmarks._common import (NORMALIZE, PECOS_PYTHON, REFS_PYTHON, REPO, data_folder,
                               load_split)
from skxmr import XRLinearClassifier
from skxmr import _ensemble
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import precision_at_k

KS = (1, 3, 5)


def _data(name):
    if name.startswith("synthetic"):
        n_labels = int(name.split("-")[1]) if "-" in name else 2000
        X, Y = make_xmc_classification(30_000, 20_000, n_labels, random_state=0)
        return X[:24_000], Y[:24_000], X[24_000:], Y[24_000:]
    return load_split(name)


def _precisions(model, X, Y):
    S = model.decision_function(X)
    return [100 * precision_at_k(Y, S, k=k) for k in KS]


def select(names, n_estimators, threads):
    rows = []
    for name in names:
        X, Y, _, _ = _data(name)
        order = np.random.RandomState(0).permutation(X.shape[0])
        cut = int(0.8 * X.shape[0])
        fit, val = order[:cut], order[cut:]
        Xf, Yf, Xv, Yv = X[fit], Y[fit], X[val], Y[val]
        t = time.perf_counter()
        single = XRLinearClassifier(random_state=0, n_jobs=threads).fit(Xf, Yf)
        single_s = time.perf_counter() - t
        base = _precisions(single, Xv, Yv)
        rows.append(dict(data=name, model="1 tree", fit_s=single_s, p=base))
        for diversity in _ensemble.DIVERSITIES:
            t = time.perf_counter()
            model = XRLinearClassifier(n_estimators=n_estimators, diversity=diversity,
                                       random_state=0, n_jobs=threads).fit(Xf, Yf)
            fit_s = time.perf_counter() - t
            for factor in (1, 2, 4):
                _ensemble.CANDIDATE_FACTOR = factor
                for combination in _ensemble.COMBINATIONS:
                    model.set_params(combination=combination)
                    rows.append(dict(data=name, model=f"{n_estimators} trees",
                                     diversity=diversity, combination=combination,
                                     factor=factor, fit_s=fit_s,
                                     p=_precisions(model, Xv, Yv)))
            _ensemble.CANDIDATE_FACTOR = 2
        for row in rows:
            if row["data"] == name:
                row["gain"] = [a - b for a, b in zip(row["p"], base)]
        _print_rows([r for r in rows if r["data"] == name])
    return rows


def _print_rows(rows):
    for r in rows:
        p = " / ".join(f"{v:.2f}" for v in r["p"])
        g = " / ".join(f"{v:+.2f}" for v in r.get("gain", [0, 0, 0]))
        print(f"{r['data']:28s} {r['model']:8s} {r.get('diversity', ''):9s} "
              f"{r.get('combination', ''):8s} x{r.get('factor', '')!s:2s} "
              f"fit {r['fit_s']:7.1f} s  P@1/3/5 {p}  gain {g}", flush=True)


def _summary(rows):
    """Mean gain in P@1/P@5 over the data sets, per (diversity, combination, factor)."""
    groups = {}
    for r in rows:
        if "combination" in r:
            key = (r["diversity"], r["combination"], r["factor"])
            groups.setdefault(key, []).append(r["gain"])
    print("\nmean gain over the sets (P@1 / P@3 / P@5):")
    for key, gains in sorted(groups.items(), key=lambda kv: -np.mean(
            [g[0] + g[2] for g in kv[1]])):
        mean = np.mean(gains, axis=0)
        worst = np.min(gains, axis=0)
        print(f"  {key[0]:9s} {key[1]:8s} x{key[2]}  mean "
              + " / ".join(f"{v:+.2f}" for v in mean)
              + "   worst " + " / ".join(f"{v:+.2f}" for v in worst))


def _run_reference(job, name, threads):
    """One reference job in its venv; ``(result JSON, P@1/3/5 in percent)``."""
    folder = data_folder(name)
    if job == "pecos-xlinear":
        python, module, args = PECOS_PYTHON, "pecos_runner", ["xlinear"]
    else:
        python, module, args = REFS_PYTHON, "refs_runner", [job]
    cmd = [str(python), "-m", f"benchmarks.references.{module}", *args,
           "--data-dir", str(folder), "--threads", str(threads),
           "--latency-queries", "200"]
    if folder.name in NORMALIZE:
        cmd.append("--normalize")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    scale = 1 if job == "pecos-xlinear" else 100  # libpecos's runner gives percents
    return r, [scale * r[f"P@{k}"] for k in KS]


def _latency_ms(model, Xt, n=200):
    """Median one-row predict_topk time (one thread), in ms."""
    model.set_params(n_jobs=1)
    times = []
    for i in range(min(n, Xt.shape[0])):
        row = Xt[i:i + 1]
        t = time.perf_counter()
        model.predict_topk(row)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def _line(name, who, fit_s, predict_s, latency_ms, p):
    print(f"{name:26s} {who:18s} fit {fit_s:7.1f} s  predict {predict_s:6.2f} s  "
          f"1-query {latency_ms:6.2f} ms  P@1/3/5 " + " / ".join(f"{v:.2f}" for v in p),
          flush=True)


def report(names, sizes, threads, refs, jobs=None):
    for name in names:
        X, Y, Xt, Yt = _data(name)
        for n in sizes:
            t = time.perf_counter()
            model = XRLinearClassifier(n_estimators=n, random_state=0,
                                       n_jobs=threads).fit(X, Y)
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            p = _precisions(model, Xt, Yt)
            predict_s = time.perf_counter() - t
            _line(name, f"skxmr {n} tree{'s' if n > 1 else ''}", fit_s, predict_s,
                  _latency_ms(model, Xt), p)
        if refs and not name.startswith("synthetic"):
            if jobs is None:
                jobs = ["omikuji-parabel", "omikuji-bonsai", "napkinxc-plt"]
                if PECOS_PYTHON.exists():
                    jobs.insert(0, "pecos-xlinear")
            for job in jobs:
                r, p = _run_reference(job, name, threads)
                _line(name, job, r["fit_seconds"], r["predict_seconds"],
                      r["latency_ms_median"], p)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--select", action="store_true")
    mode.add_argument("--report", action="store_true")
    p.add_argument("--data", nargs="+", default=["debian-debtags"])
    p.add_argument("--n-estimators", type=int, default=3, help="(--select)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 5],
                   help="(--report) the ensemble sizes to fit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--refs", action="store_true",
                   help="also run libpecos, Omikuji and napkinXC (their venvs)")
    p.add_argument("--jobs", nargs="+", default=None,
                   choices=["pecos-xlinear", "omikuji-parabel", "omikuji-bonsai",
                            "napkinxc-plt"],
                   help="(--refs) only these reference jobs")
    a = p.parse_args(argv)
    if a.select:
        _summary(select(a.data, a.n_estimators, a.threads))
    else:
        if a.refs and not REFS_PYTHON.exists():
            sys.exit("no refs venv: bash benchmarks/references/make_refs_env.sh")
        report(a.data, a.sizes, a.threads, a.refs, a.jobs)


if __name__ == "__main__":
    main()
