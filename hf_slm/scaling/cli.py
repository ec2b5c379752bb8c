"""``hf-slm fit`` and ``hf-slm plan``: scaling-law fits and compute planning from the command line.

Only the standard library is imported here; numpy, pandas, scikit-learn and the fitters are imported inside
the commands, so ``hf-slm fit --help`` is instant. Bad input raises ``ValueError`` naming the file, key or
option; ``hf_slm.cli.main`` prints it on one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LAWS = ("chinchilla", "data-constrained", "power")

FIT_EPILOG = """examples:
  hf-slm fit runs/ --law chinchilla --bootstrap 200 --json fit.json --plot isoloss.png
  hf-slm fit chinchilla.csv --map "Model Size=N" "Training FLOP=C" --delta 1e-3 --drop-highest 5
  hf-slm fit c4.csv --law data-constrained --delta 1e-3 --map N_params=N D_tokens=D U_unique_tokens=U \\
      val_loss=loss --fix E=1.8691 A=520.82 B=1487.72 alpha=0.3526596 beta=0.3526596
  hf-slm fit runs/ --law power --curves              # loss envelope of the learning curves
  hf-slm fit runs/ --law power --y sblimp            # best sBLIMP per FLOP
"""

PLAN_EPILOG = """examples:
  hf-slm plan runs/ --loss 3.2 --bootstrap 100       # C, N_opt, D_opt for a target loss
  hf-slm plan fit.json --loss 3.2 --N 3e8            # tokens a 300M model needs (from a saved fit)
  hf-slm plan runs/ --metric sblimp --target 0.6     # compute for a metric value on the envelope law
"""


RULE_HELP = ("runs entering the fits: by default the rule of the authors' release (more than 5,000 planned updates, "
             "at most one epoch, duplicates removed); the dropped runs are listed")


# ------------------------------------------------------------------------------------------- options
def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _level(text: str) -> float:
    """argparse type: a confidence level in (0, 1)."""
    value = _positive(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a level between 0 and 1 (e.g. 0.95), got {text}")
    return value


def _floats(items, option: str) -> dict[str, float]:
    from hf_slm.scaling.runs import parse_assignments

    out = {}
    for key, value in parse_assignments(items).items():
        try:
            out[key] = float(value)
        except ValueError:
            raise ValueError(f"{option} {key}={value}: {value!r} is not a number") from None
    return out


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--map", nargs="+", default=[], action="extend", metavar="SRC=DST",
                   help="rename source columns to canonical ones (N, D, U, C, loss, run, step, updates, metrics)")
    p.add_argument("--curves", action="store_true",
                   help="use every learning-curve point of run records (default: final point per run)")
    rule = p.add_argument_group("run selection", RULE_HELP)
    rule.add_argument("--all-runs", action="store_true", help="fit on every run (no selection rule)")
    rule.add_argument("--min-updates", type=_count, default=5000, metavar="K",
                      help="keep runs with more than K planned updates (default 5000; 'updates' column or "
                           "the records' stats.n_steps)")
    p.add_argument("--drop-highest", type=_count, default=0, metavar="K",
                   help="outlier rule of Besiroglu et al.: keep points with loss strictly below the K-th largest")
    p.add_argument("--delta", type=_positive, default=0.03,
                   help="Huber delta on log-loss (paper 0.03; Chinchilla 1e-3)")
    p.add_argument("--fix", nargs="+", default=[], action="extend", metavar="NAME=VALUE",
                   help="hold constants fixed: E, A, B, alpha, beta, R_N, R_D")
    p.add_argument("--bootstrap", type=_count, default=0, metavar="K", help="bootstrap resamples of runs (0: none)")
    p.add_argument("--level", type=_level, default=0.95, help="confidence level of intervals (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fit`` and ``plan`` subcommands."""
    fit = subparsers.add_parser(
        "fit", help="fit a scaling law (eq.4, eq.7/8 or a power law) to a run table",
        description="Fit a scaling law to a run table (CSV, JSONL, Parquet or a folder of run.json records). "
                    "eq.4 is fitted as Besiroglu et al. do: summed Huber loss on log-loss, log-sum-exp "
                    "parameterisation, batched L-BFGS from a 4,500-point grid, best optimum polished. "
                    "Rows with a missing or non-positive value are dropped and listed; a law with p free "
                    "constants needs at least p + 1 points.",
        epilog=FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("runs", help="run table file or folder of run records")
    fit.add_argument("--law", choices=LAWS, default="chinchilla", help="law to fit (default chinchilla)")
    _add_data_args(fit)
    fit.add_argument("--init", nargs="+", default=[], action="extend", metavar="NAME=VALUE",
                     help="start from this single point instead of the grid (e.g. R_N=6.67 R_D=13.33)")
    fit.add_argument("--tie-exponents", action="store_true", help="fit alpha = beta (Muennighoff's stage 1)")
    fit.add_argument("--reduction", choices=("sum", "mean"), default="sum", help="sum or average the Huber terms")
    fit.add_argument("--x", default="C", help="power law: compute column (default C)")
    fit.add_argument("--y", default="loss", help="power law: value column (default loss)")
    fit.add_argument("--envelope", choices=("auto", "min", "max", "none"), default="auto",
                     help="power law: fit on the envelope (auto: min for loss, max for metrics)")
    fit.add_argument("--json", metavar="OUT", help="write the fitted constants (and intervals) as JSON")
    fit.add_argument("--plot", metavar="OUT.png", help="iso-loss contours (eq.4 laws) or envelope plot (power)")
    fit.set_defaults(func=run_fit)

    plan = subparsers.add_parser(
        "plan", help="compute, N and D needed to reach a target loss or metric value",
        description="Plan a training run from fitted laws: the least compute (and its compute-optimal N, D) "
                    "reaching a loss, or the compute at which a metric's envelope power law reaches a value. "
                    "SOURCE is a run table (laws are fitted) or a JSON written by `hf-slm fit --json`.",
        epilog=PLAN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    plan.add_argument("source", help="run table / folder of run records, or a fit JSON")
    target = plan.add_mutually_exclusive_group(required=True)
    target.add_argument("--loss", type=_positive, help="target test loss")
    target.add_argument("--metric", help="metric column whose envelope power law is inverted")
    plan.add_argument("--target", type=float, help="target metric value (with --metric)")
    plan.add_argument("--N", type=_positive, help="fixed model size: tokens this model needs (with --loss)")
    _add_data_args(plan)
    plan.add_argument("--json", metavar="OUT", help="write the plan as JSON")
    plan.set_defaults(func=run_plan)


# ---------------------------------------------------------------------------------------------- data
def _rule(args, epochs: bool = True):
    """The selection rule of ``args`` (None with ``--all-runs``); ``epochs=False`` for eq.7/8."""
    from hf_slm.scaling.selection import FitRunRule

    if args.all_runs:
        return None
    return FitRunRule(min_updates=args.min_updates, max_epochs=1.0 if epochs else None)


def _load(args, curves: bool | None = None):
    """The run table of ``args`` (``runs`` or ``source``) with the column map applied."""
    from hf_slm.scaling.runs import load_run_table, parse_assignments

    return load_run_table(args.runs if hasattr(args, "runs") else args.source,
                          curves=args.curves if curves is None else curves,
                          column_map=parse_assignments(args.map))


class Prepared:
    """The rows a fit uses, and what was dropped on the way (printed, and saved in the fit JSON)."""

    def __init__(self, rows, selection, dropped_rows: list[str], notes: list[str]) -> None:
        self.rows, self.selection, self.dropped_rows, self.notes = rows, selection, dropped_rows, notes

    def report(self) -> dict:
        return {"selection": self.selection.to_dict(), "dropped_rows": self.dropped_rows}


def _row_name(df, i) -> str:
    return str(df.at[i, "run"]) if "run" in df else f"row {i}"


def prepare(df, args, columns: list[str], rule, law_name: str, echo: bool = True) -> Prepared:
    """Apply the run-selection ``rule``, drop (and name) rows with a missing or non-positive value in
    ``columns``, then the ``--drop-highest`` outlier rule; refuse an empty result. With ``echo`` the notes
    (rule, dropped runs and rows) are printed as they are made, so they precede any error."""
    import numpy as np

    from hf_slm.scaling.selection import select_fit_runs

    for col in columns:
        if col not in df:
            raise ValueError(f"no column {col!r} in the run table (columns: {list(df.columns)}); "
                             "rename one with --map SRC=DST")
    selection = select_fit_runs(df, rule)
    notes = selection.describe()
    data = selection.rows
    import pandas as pd

    numeric = data[columns].apply(pd.to_numeric, errors="coerce")  # text in a value column counts as missing
    good = np.isfinite(numeric.to_numpy(dtype=float)) & (numeric.to_numpy(dtype=float) > 0)
    ok = good.all(axis=1)
    dropped_rows = []
    for i in np.flatnonzero(~ok):
        bad = ", ".join(f"{c}={data.at[i, c]}" for j, c in enumerate(columns) if not good[i, j])
        dropped_rows.append(f"{_row_name(data, i)} ({bad})")
    if dropped_rows:
        notes.append(f"dropped {len(dropped_rows)} of {len(data)} rows with a missing, non-finite or "
                     f"non-positive {'/'.join(columns)}: " + "; ".join(dropped_rows[:10])
                     + (f"; ... ({len(dropped_rows) - 10} more)" if len(dropped_rows) > 10 else ""))
    data = data[ok].reset_index(drop=True)
    for col in columns:
        data[col] = pd.to_numeric(data[col])
    if echo:
        _print_notes(notes)
    if data.empty:
        raise ValueError(f"no rows left to fit the {law_name} law on (see the dropped runs and rows above)")
    k = args.drop_highest
    if k:
        if k >= len(data):
            raise ValueError(f"--drop-highest {k} would drop every point: only {len(data)} rows to fit")
        threshold = np.sort(data["loss"].to_numpy())[-k]
        n_before = len(data)
        data = data[data["loss"] < threshold].reset_index(drop=True)
        notes.append(f"--drop-highest {k}: kept the {len(data)} of {n_before} points with loss below {threshold:.6g}")
        if echo:
            _print_notes(notes[-1:])
    return Prepared(data, selection, dropped_rows, notes)


def _check_points(n_points: int, n_free: int, law_name: str) -> None:
    if n_points < n_free + 1:
        raise ValueError(f"the {law_name} law has {n_free} free constant{'s' * (n_free != 1)}: a fit needs at least "
                         f"{n_free + 1} points, got {n_points}")


def _groups(df):
    return df["run"].astype(str).to_numpy() if "run" in df else None


# ---------------------------------------------------------------------------------------------- fits
def _payload(law_name: str, law, boot, fixed: dict, prepared: Prepared, args) -> dict:
    from hf_slm.scaling.payload import fit_payload

    out = fit_payload(law_name, law, boot, delta=args.delta, n_points=len(prepared.rows), seed=args.seed,
                      n_resamples=args.bootstrap, fixed=fixed)
    out.update(prepared.report())
    return out


def fit_chinchilla(df, args, echo: bool = True):
    """eq.4 fit for the CLI on the selected single-epoch rows, with optional bootstrap.

    Returns ``(payload, law, bootstrap, prepared)``."""
    from hf_slm.scaling.bootstrap import bootstrap_law
    from hf_slm.scaling.laws import ChinchillaLaw
    from hf_slm.scaling.runs import single_epoch

    fixed = _floats(args.fix, "--fix")
    prepared = prepare(df, args, ["N", "D", "loss"], _rule(args), "eq.4", echo)
    data = prepared.rows
    if args.all_runs:  # eq.4 is a law of unique data: multi-epoch runs never enter it
        multi = ~single_epoch(data)
        if multi.any():
            prepared.notes.append(f"eq.4 uses single-epoch runs only: left out {int(multi.sum())} multi-epoch rows")
            if echo:
                _print_notes(prepared.notes[-1:])
        data = prepared.rows = data[~multi].reset_index(drop=True)
    law = ChinchillaLaw(delta=args.delta, fixed=fixed or None, tie_exponents=getattr(args, "tie_exponents", False),
                        reduction=getattr(args, "reduction", "sum"),
                        init=_floats(getattr(args, "init", []), "--init") or None)
    _check_points(len(data), len(law._param_map().free_names), "eq.4")
    law.fit(data["N"], data["D"], data["loss"])
    boot = None
    if args.bootstrap:
        boot = bootstrap_law(law, data["N"], data["D"], data["loss"], groups=_groups(data),
                             n_resamples=args.bootstrap, level=args.level, seed=args.seed)
    return _payload("chinchilla", law, boot, fixed, prepared, args), law, boot, prepared


def _fit_data_constrained(df, args):
    from hf_slm.scaling.bootstrap import bootstrap_law
    from hf_slm.scaling.laws import CHINCHILLA_PARAMS, DataConstrainedLaw

    fixed = _floats(args.fix, "--fix")
    prepared = prepare(df, args, ["N", "D", "loss"], _rule(args, epochs=False), "eq.7/8")
    data = prepared.rows
    law = DataConstrainedLaw(delta=args.delta, fixed=fixed or None, reduction=args.reduction,
                             init=_floats(args.init, "--init") or None)
    n_free = len([n for n in ("R_N", "R_D") if n not in fixed])
    _check_points(len(data), n_free, "eq.7/8")
    U = data["U"] if "U" in data else None
    law.fit(data["N"], data["D"], U, data["loss"])
    boot = None
    if args.bootstrap:
        boot = bootstrap_law(law, data["N"], data["D"], data["loss"], groups=_groups(data),
                             n_resamples=args.bootstrap, level=args.level, seed=args.seed)
    base_fixed = {k: v for k, v in law.params_.items() if k in CHINCHILLA_PARAMS}
    payload = _payload("data-constrained", law, boot, {**base_fixed, **fixed}, prepared, args)
    return payload, law, boot, prepared


def fit_power(df, args, x: str = "C", y: str = "loss", mode: str = "auto"):
    """Power law ``y = k x^gamma`` on the envelope of ``y`` (or on all points with mode ``none``).

    Returns ``(payload, law, bootstrap, rows used, prepared)``."""
    from hf_slm.scaling.bootstrap import bootstrap_law
    from hf_slm.scaling.downstream import PowerLaw, envelope

    prepared = prepare(df, args, [x, y], _rule(args), "power")
    data = prepared.rows
    mode = ("min" if y == "loss" else "max") if mode == "auto" else mode
    if mode != "none":
        env = envelope(data[x], data[y], mode=mode)
        data = data.iloc[env["index"].to_numpy()]
    _check_points(len(data), 2, f"power ({y} on the {mode} envelope)" if mode != "none" else "power")
    law = PowerLaw().fit(data[x], data[y])
    boot = None
    if args.bootstrap:
        boot = bootstrap_law(law, data[x], data[y], n_resamples=args.bootstrap, level=args.level, seed=args.seed)
    payload = _payload("power", law, boot, {}, prepared, args)
    payload.update(x=x, y=y, envelope=mode, n_points=len(data))
    return payload, law, boot, data, prepared


def _write_json(payload: dict, path: str | None) -> None:
    if not path:
        return
    text = json.dumps(payload, indent=2, default=float)
    out = Path(path)
    if out.is_dir():
        raise IsADirectoryError(f"--json {path} is a folder; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


def _print_notes(notes: list[str]) -> None:
    for line in notes:
        print(line)


def _print_summary(payload: dict) -> None:
    names = [k for k in ("E", "A", "B", "alpha", "beta", "R_N", "R_D", "k", "gamma") if k in payload]
    for name in names:
        v = payload[name]
        if isinstance(v, dict):
            print(f"{name:>6} = {v['value']:.6g}  [{v['ci_low']:.6g}, {v['ci_high']:.6g}]")
        else:
            print(f"{name:>6} = {v:.6g}")
    if "allocation" in payload:
        print(f"eq.6: a = {payload['allocation']['a']:.4f}, b = {payload['allocation']['b']:.4f}")
    if "objective" in payload:
        print(f"objective = {payload['objective']:.10g} on {payload['n_points']} points")


def run_fit(args: argparse.Namespace) -> int:
    """``hf-slm fit``."""
    df = _load(args)
    if args.law == "power":
        payload, law, _, _, prepared = fit_power(df, args, args.x, args.y, args.envelope)
    else:
        fitter = fit_chinchilla if args.law == "chinchilla" else _fit_data_constrained
        payload, law, _, prepared = fitter(df, args)
    _print_summary(payload)
    _write_json(payload, args.json)
    if args.plot:
        from hf_slm.scaling.figures import plot_isoloss, plot_power_fit

        if args.law == "power":
            full = prepared.rows
            plot_power_fit(full[args.x], full[args.y], law.params_, args.plot,
                           mode="min" if payload["envelope"] in ("min", "none") else "max", ylabel=args.y)
        else:
            plot_isoloss(law.params_, args.plot, runs=prepared.rows)
    if args.json:
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- plan
def _saved_samples(payload: dict):
    import pandas as pd

    samples = (payload.get("bootstrap") or {}).get("samples")
    return pd.DataFrame(samples) if samples else None


def _point(payload: dict, names, where: str) -> dict[str, float]:
    out = {}
    for name in names:
        if name not in payload:
            raise ValueError(f"{where}: the fit has no key {name!r} (a {payload.get('law')} fit from "
                             f"`hf-slm fit --json` holds {', '.join(names)})")
        entry = payload[name]
        value = entry.get("value") if isinstance(entry, dict) else entry
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: key {name!r} is not a number: {entry!r}") from None
    return out


def _plan_from_fit(args, payload: dict) -> dict:
    from hf_slm.scaling.laws import CHINCHILLA_PARAMS
    from hf_slm.scaling.planning import plan_for_loss, plan_for_metric

    where = str(args.source)
    samples = _saved_samples(payload)
    if args.loss is not None:
        if payload.get("law") == "power":
            raise ValueError(f"{where} is a power-law fit: it cannot plan for a loss; use an eq.4 fit or a run table")
        return plan_for_loss(args.loss, _point(payload, CHINCHILLA_PARAMS, where), samples, N=args.N,
                             level=args.level)
    if payload.get("law") != "power":
        raise ValueError(f"--metric needs a power-law fit JSON or a run table; {where} is a {payload.get('law')} fit")
    return plan_for_metric(args.target, _point(payload, ("k", "gamma"), where), samples, level=args.level)


def _plan_from_runs(args, notes: list[str]) -> dict:
    from hf_slm.scaling.planning import plan_for_loss, plan_for_metric

    df = _load(args, curves=False)
    if args.loss is not None:
        _, law, boot, prepared = fit_chinchilla(df, args)
        notes += prepared.notes
        return plan_for_loss(args.loss, law.params_, None if boot is None else boot.samples, N=args.N,
                             level=args.level)
    _, power, boot, _, prepared = fit_power(df, args, "C", args.metric, "max")
    notes += prepared.notes
    law_params = None
    try:
        law_params = fit_chinchilla(df, argparse.Namespace(**{**vars(args), "bootstrap": 0}), echo=False)[1].params_
    except (ValueError, RuntimeError) as err:
        notes.append(f"N and D not planned: the eq.4 fit they need failed ({err})")
        _print_notes(notes[-1:])
    plan = plan_for_metric(args.target, power.params_, None if boot is None else boot.samples, law_params,
                           level=args.level)
    return plan


def run_plan(args: argparse.Namespace) -> int:
    """``hf-slm plan``."""
    from hf_slm.scaling.runs import _read_json

    if args.metric is not None and args.target is None:
        raise ValueError("--metric needs --target VALUE")
    if args.N is not None and args.loss is None:
        raise ValueError("--N plans for a target loss: give --loss too")
    source = Path(args.source)
    payload = None
    if source.suffix == ".json" and source.is_file():
        data = _read_json(source)
        payload = data if isinstance(data, dict) and "law" in data else None
    notes: list[str] = []
    plan = _plan_from_fit(args, payload) if payload is not None else _plan_from_runs(args, notes)
    for name, entry in plan.items():
        band = f"  [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]" if "ci_low" in entry else ""
        print(f"{name:>13} = {entry['value']:.4g}{band}")
    if notes:
        plan = {**plan, "notes": notes}
    _write_json(plan, args.json)
    return 0
