"""``hf-slm fit`` and ``hf-slm plan``: scaling-law fits and compute planning from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hf_slm.scaling.allocation import allocation_constant, allocation_exponents
from hf_slm.scaling.bootstrap import BootstrapResult, bootstrap_law
from hf_slm.scaling.downstream import PowerLaw, envelope
from hf_slm.scaling.laws import CHINCHILLA_PARAMS, ChinchillaLaw, DataConstrainedLaw
from hf_slm.scaling.planning import plan_for_loss, plan_for_metric
from hf_slm.scaling.runs import finite, load_run_table, parse_assignments, single_epoch

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


def _floats(items) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in parse_assignments(items).items()}
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--map", nargs="+", default=[], action="extend", metavar="SRC=DST",
                   help="rename source columns to canonical ones (N, D, U, C, loss, run, step, metrics)")
    p.add_argument("--curves", action="store_true",
                   help="use every learning-curve point of run records (default: final point per run)")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K",
                   help="outlier rule of Besiroglu et al.: keep points with loss strictly below the K-th largest")
    p.add_argument("--delta", type=float, default=0.03, help="Huber delta on log-loss (paper 0.03; Chinchilla 1e-3)")
    p.add_argument("--fix", nargs="+", default=[], action="extend", metavar="NAME=VALUE",
                   help="hold constants fixed: E, A, B, alpha, beta, R_N, R_D")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K", help="bootstrap resamples of runs (0: none)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fit`` and ``plan`` subcommands."""
    fit = subparsers.add_parser(
        "fit", help="fit a scaling law (eq.4, eq.7/8 or a power law) to a run table",
        description="Fit a scaling law to a run table (CSV, JSONL, Parquet or a folder of run.json records). "
                    "eq.4 is fitted as Besiroglu et al. do: summed Huber loss on log-loss, log-sum-exp "
                    "parameterisation, batched L-BFGS from a 4,500-point grid, best optimum polished.",
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
    target.add_argument("--loss", type=float, help="target test loss")
    target.add_argument("--metric", help="metric column whose envelope power law is inverted")
    plan.add_argument("--target", type=float, help="target metric value (with --metric)")
    plan.add_argument("--N", type=float, help="fixed model size: tokens this model needs (with --loss)")
    _add_data_args(plan)
    plan.add_argument("--json", metavar="OUT", help="write the plan as JSON")
    plan.set_defaults(func=run_plan)


# ---------------------------------------------------------------------------------------------- data
def _load(args, curves: bool | None = None) -> pd.DataFrame:
    df = load_run_table(args.runs if hasattr(args, "runs") else args.source,
                        curves=args.curves if curves is None else curves,
                        column_map=parse_assignments(args.map))
    if args.drop_highest:
        threshold = np.sort(df["loss"].to_numpy())[-args.drop_highest]
        df = df[df["loss"] < threshold]
    return df.reset_index(drop=True)


def _groups(df: pd.DataFrame):
    return df["run"].astype(str).to_numpy() if "run" in df else None


# ---------------------------------------------------------------------------------------------- fits
def _value(name: str, value: float, boot: BootstrapResult | None, fixed: dict) -> float | dict:
    if boot is None or name in fixed:
        return float(value)
    low, high = boot.interval(name)
    return {"value": float(value), "ci_low": low, "ci_high": high,
            "se": float(boot.samples[name].std(ddof=1)), "level": boot.level}


def _payload(law_name: str, law, boot: BootstrapResult | None, fixed: dict, n_points: int, args) -> dict:
    out: dict = {"law": law_name, "delta": args.delta, "n_points": n_points}
    for name, value in law.params_.items():
        out[name] = _value(name, value, boot, fixed)
    if law_name != "power":
        p = law.params_
        a, b = allocation_exponents(p["alpha"], p["beta"])
        out["allocation"] = {"a": a, "b": b, "G": allocation_constant(p)}
        out["objective"] = law.objective_
        out["n_starts"] = law.n_starts_
    else:
        out["rmse_log"] = law.rmse_log_
    out["fixed"] = fixed
    if boot is not None:
        out["bootstrap"] = {"n_resamples": args.bootstrap, "n_valid": len(boot.samples), "level": boot.level,
                            "seed": args.seed, "samples": boot.samples.to_dict("list")}
    return out


def fit_chinchilla(df: pd.DataFrame, args) -> tuple[dict, ChinchillaLaw, BootstrapResult | None]:
    """eq.4 fit for the CLI (single-epoch rows), with optional bootstrap."""
    fixed = _floats(args.fix)
    data = finite(df[single_epoch(df)], ["N", "D", "loss"])
    law = ChinchillaLaw(delta=args.delta, fixed=fixed or None, tie_exponents=getattr(args, "tie_exponents", False),
                        reduction=getattr(args, "reduction", "sum"),
                        init=_floats(getattr(args, "init", [])) or None)
    law.fit(data["N"], data["D"], data["loss"])
    boot = None
    if args.bootstrap:
        boot = bootstrap_law(law, data["N"], data["D"], data["loss"], groups=_groups(data),
                             n_resamples=args.bootstrap, level=args.level, seed=args.seed)
    return _payload("chinchilla", law, boot, fixed, len(data), args), law, boot


def _fit_data_constrained(df: pd.DataFrame, args):
    fixed = _floats(args.fix)
    data = finite(df, ["N", "D", "loss"])
    law = DataConstrainedLaw(delta=args.delta, fixed=fixed or None, reduction=args.reduction,
                             init=_floats(args.init) or None)
    U = data["U"] if "U" in data else None
    law.fit(data["N"], data["D"], U, data["loss"])
    boot = None
    if args.bootstrap:
        boot = bootstrap_law(law, data["N"], data["D"], data["loss"], groups=_groups(data),
                             n_resamples=args.bootstrap, level=args.level, seed=args.seed)
    base_fixed = {k: v for k, v in law.params_.items() if k in CHINCHILLA_PARAMS}
    return _payload("data-constrained", law, boot, {**base_fixed, **fixed}, len(data), args), law, boot


def fit_power(df: pd.DataFrame, args, x: str = "C", y: str = "loss", mode: str = "auto"):
    """Power law ``y = k x^gamma`` on the envelope of ``y`` (or on all points with mode ``none``)."""
    if y not in df:
        raise SystemExit(f"error: no column {y!r} in the run table (columns: {list(df.columns)})")
    data = finite(df, [x, y])
    mode = ("min" if y == "loss" else "max") if mode == "auto" else mode
    if mode != "none":
        env = envelope(data[x], data[y], mode=mode)
        data = data.iloc[env["index"].to_numpy()]
    law = PowerLaw().fit(data[x], data[y])
    boot = None
    if args.bootstrap:
        boot = bootstrap_law(law, data[x], data[y], n_resamples=args.bootstrap, level=args.level, seed=args.seed)
    payload = _payload("power", law, boot, {}, len(data), args)
    payload.update(x=x, y=y, envelope=mode)
    return payload, law, boot, data


def _write_json(payload: dict, path: str | None) -> None:
    text = json.dumps(payload, indent=2, default=float)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")


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
    from hf_slm.scaling.figures import plot_isoloss, plot_power_fit

    df = _load(args)
    if args.law == "power":
        payload, law, _, data = fit_power(df, args, args.x, args.y, args.envelope)
        if args.plot:
            full = finite(df, [args.x, args.y])
            plot_power_fit(full[args.x], full[args.y], law.params_, args.plot,
                           mode="min" if payload["envelope"] in ("min", "none") else "max", ylabel=args.y)
    else:
        fitter = fit_chinchilla if args.law == "chinchilla" else _fit_data_constrained
        payload, law, _ = fitter(df, args)
        if args.plot:
            plot_isoloss(law.params_, args.plot, runs=df)
    _print_summary(payload)
    _write_json(payload, args.json)
    if args.json:
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- plan
def _saved_samples(payload: dict) -> pd.DataFrame | None:
    samples = (payload.get("bootstrap") or {}).get("samples")
    return pd.DataFrame(samples) if samples else None


def _point(payload: dict, names) -> dict[str, float]:
    return {n: float(payload[n]["value"] if isinstance(payload[n], dict) else payload[n]) for n in names}


def _plan_from_fit(args, payload: dict) -> dict:
    samples = _saved_samples(payload)
    if args.loss is not None:
        if payload.get("law") == "power":
            raise SystemExit("error: a power-law fit cannot plan for a loss; use an eq.4 fit or a run table")
        return plan_for_loss(args.loss, _point(payload, CHINCHILLA_PARAMS), samples, N=args.N, level=args.level)
    if payload.get("law") != "power":
        raise SystemExit("error: --metric needs a power-law fit JSON or a run table")
    return plan_for_metric(args.target, _point(payload, ("k", "gamma")), samples, level=args.level)


def _plan_from_runs(args) -> dict:
    df = _load(args, curves=False)
    if args.loss is not None:
        _, law, boot = fit_chinchilla(df, args)
        return plan_for_loss(args.loss, law.params_, None if boot is None else boot.samples, N=args.N,
                             level=args.level)
    _, power, boot, _ = fit_power(df, args, "C", args.metric, "max")
    law_params = None
    try:
        law_params = fit_chinchilla(df, argparse.Namespace(**{**vars(args), "bootstrap": 0}))[1].params_
    except (ValueError, RuntimeError):
        pass
    return plan_for_metric(args.target, power.params_, None if boot is None else boot.samples, law_params,
                           level=args.level)


def run_plan(args: argparse.Namespace) -> int:
    """``hf-slm plan``."""
    if args.metric is not None and args.target is None:
        raise SystemExit("error: --metric needs --target VALUE")
    source = Path(args.source)
    payload = None
    if source.suffix == ".json" and source.is_file():
        data = json.loads(source.read_text())
        payload = data if isinstance(data, dict) and "law" in data else None
    plan = _plan_from_fit(args, payload) if payload is not None else _plan_from_runs(args)
    for name, entry in plan.items():
        band = f"  [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]" if "ci_low" in entry else ""
        print(f"{name:>13} = {entry['value']:.4g}{band}")
    _write_json(plan, args.json)
    return 0
