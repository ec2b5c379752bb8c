"""Running a study: data -> runs (train, then evaluate) -> run table -> fits -> figures and report.

Every stage does only what is missing: the data steps skip complete outputs, a run whose ``run.json`` is a
finished record with the study's metrics is skipped (a finished one without them is only evaluated, e.g.
after a Slurm array trained it), an interrupted run resumes from its checkpoint, and the report is rebuilt
from the run records. The settings that shape the data are recorded in ``study_config.json``; a rerun with
other data settings in the same folder is refused (naming the keys), while grid, training, fit and report
settings may change (new runs train; a changed run's folder is refused by the trainer, naming the key).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hf_slm.study.config import StudyConfig, StudyConfigError
from hf_slm.study.corpus import Corpus
from hf_slm.study.plan import UNIGRAM, PlannedRun, families, plan_runs, run_settings

DATA_KEYS = ("seed", "speech", "tokenizer")
DONE, TRAINED, STARTED, TODO = "done", "trained", "started", "todo"
STAGES = ("data", "runs", "report")


def default_precision() -> str:
    """bf16 autocast where the device computes in bf16 natively (CUDA, or a CPU with AVX512-BF16 / AMX),
    else fp32 (``mixed_precision: auto``)."""
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # oneDNN's own check
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "no"


class Study:
    """One study folder. ``run()`` is the whole study; ``plan()``, ``states()`` and the stages also work alone."""

    def __init__(self, config: StudyConfig, log: Callable[[str], None] | None = None, progress: bool = True):
        self.config = config
        self.root = Path(config.output)
        self.corpus = Corpus(config, self.root)
        self.progress = progress
        self._log = log if log is not None else (lambda msg: print(f"[hf-slm study] {msg}", flush=True))
        self.timings: dict[str, float] = {}

    def log(self, message: str) -> None:
        self._log(message)

    # -- the plan ------------------------------------------------------------------------------------------
    def plan(self) -> list[PlannedRun]:
        return plan_runs(self.config)

    def train_config(self, run: PlannedRun):
        """The ``TrainConfig`` of a planned run: :func:`~hf_slm.study.plan.run_settings` (the study's
        ``training``, the text family's ``text.training``, the size's overrides), then the run's own keys
        (size, K, budget, folder, data)."""
        from hf_slm.training.config import ConfigError, TrainConfig

        keys = {"tracker": None, "mixed_precision": "auto", "store_dir": str(self.root / "stores"),
                **run_settings(self.config, run.family, run.size)}
        curve_points = int(keys.pop("curve_points", 0) or 0)
        if keys.get("mixed_precision") == "auto":
            keys["mixed_precision"] = default_precision()
        keys.update(size=run.size, n_units=run.n_units, tokens=run.tokens, unique_tokens=run.unique_tokens,
                    tokens_per_param=None, epochs=None, output_dir=run.output_dir, run_name=run.name,
                    seed=keys.get("seed", self.config.seed), datasets=self.corpus.training_datasets(run.family))
        if run.family == UNIGRAM:  # the pieces of the compressed stories; K stays the speech tokenizer's
            keys.update(token_type="unigram", n_units=self.config.tokenizer.n_units)
        if curve_points and not keys.get("eval_every"):
            keys["eval_every"] = max(1, run.steps // curve_points)
        try:
            return TrainConfig.from_dict(keys, where=f"study run {run.name}")
        except ConfigError as err:
            raise StudyConfigError(f"training: {err}") from None

    def states(self, runs: list[PlannedRun] | None = None) -> dict[str, str]:
        """``done`` (trained and evaluated), ``trained`` (not evaluated), ``started`` (a checkpoint), ``todo``."""
        from hf_slm.training.record import RunRecord
        from hf_slm.training.trainer import latest_checkpoint

        out = {}
        for run in runs or self.plan():
            path = Path(run.output_dir) / "run.json"
            state = TODO
            if path.exists():
                record = RunRecord.load(path)
                if record.finished:
                    state = DONE if self._evaluated(record) else TRAINED
            elif latest_checkpoint(run.output_dir) is not None:
                state = STARTED
            out[run.name] = state
        return out

    def _evaluated(self, record) -> bool:
        want = set(self.config.benchmarks.names)
        have = {k for k, v in record.metrics.items() if v.get("scoring", v.get("rule")) == self.config.benchmarks.scoring}
        return want <= have

    # -- the whole study -----------------------------------------------------------------------------------
    def run(self, stages: tuple[str, ...] = STAGES) -> Path:
        """Run ``stages`` in order (what is done is skipped); return the report's folder."""
        unknown = sorted(set(stages) - set(STAGES))
        if unknown:
            raise StudyConfigError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_data_settings()
        start, cpu_start = time.perf_counter(), cpu_seconds()
        for stage in STAGES:
            if stage in stages:
                t0, c0 = time.perf_counter(), cpu_seconds()
                getattr(self, f"stage_{stage}")()
                self.timings[stage] = round(time.perf_counter() - t0, 1)
                self.timings[f"{stage}.cpu"] = round(cpu_seconds() - c0, 1)
                self.log(f"stage {stage} done in {self.timings[stage]:.1f} s "
                         f"({self.timings[f'{stage}.cpu']:.1f} CPU-s)")
        self.timings["total"] = round(time.perf_counter() - start, 1)
        self.timings["total.cpu"] = round(cpu_seconds() - cpu_start, 1)
        return self.root / "report"

    def _check_data_settings(self) -> None:
        path = self.root / "study_config.json"
        now = json.loads(json.dumps(self.config.to_dict()))
        if path.exists():
            before = json.loads(path.read_text())
            changed = [k for k in DATA_KEYS if before.get(k) != now.get(k)]
            changed += [f"benchmarks.{k}" for k in ("names", "items") if
                        (before.get("benchmarks") or {}).get(k) != now["benchmarks"].get(k)]
            changed += [f"{family}.vocab_size" for family, folder in (("text", "text_units"), ("unigram", "unigram_units"))
                        if (self.root / folder).exists()
                        and (before.get(family) or {}).get("vocab_size") != now[family].get("vocab_size")]
            if changed:
                raise StudyConfigError(f"{self.root} holds a study made with other data settings "
                                       f"({', '.join(changed)}); use another output folder or delete it")
        path.write_text(json.dumps(now, indent=2))

    # -- stage 1: data -------------------------------------------------------------------------------------
    def stage_data(self) -> None:
        self.timings.update({f"data.{k}": round(v, 1) for k, v in
                             self.corpus.build(families(self.config), log=self.log).items()})

    # -- stage 2: runs -------------------------------------------------------------------------------------
    def stage_runs(self) -> None:
        """Train every unfinished run here, one after another, and evaluate every finished run that lacks
        the study's metrics."""
        _set_threads(self.config.execution.threads)
        runs = self.plan()
        states = self.states(runs)
        done = sum(s == DONE for s in states.values())
        self.log(f"{done} of {len(runs)} runs done; {len(runs) - done} to train or evaluate")
        train_s = eval_s = 0.0
        for family in families(self.config):
            todo = [r for r in runs if r.family == family and states[r.name] != DONE]
            if not todo:
                continue
            data = self.family_data(family, todo[0])
            self._check_budgets(todo, data.train.n_tokens)
            for i, run in enumerate(todo, 1):
                self.log(f"{family} {i}/{len(todo)}: {run.name} (N={run.N:,}, D={run.tokens:,}, "
                         f"{run.epochs:g} epoch(s), {run.steps} steps)")
                t0 = time.perf_counter()
                record = self.train(run, data)
                t1 = time.perf_counter()
                self.evaluate(run, record, data)
                t2 = time.perf_counter()
                train_s, eval_s = train_s + t1 - t0, eval_s + t2 - t1
                metrics = ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in record.metrics.items())
                self.log(f"  loss {record.loss:.4f}; {metrics}; train {t1 - t0:.1f} s, eval {t2 - t1:.1f} s")
        self.timings.update({"runs.train": round(train_s, 1), "runs.eval": round(eval_s, 1)})

    def _check_budgets(self, runs: list[PlannedRun], available: int) -> None:
        """Refuse multi-epoch runs whose unique tokens the data do not hold; say which single-epoch runs the
        data make repeat (they leave the eq.4 fit)."""
        short = [f"{r.name} (U={r.unique_tokens:,})" for r in runs if r.unique_tokens and r.unique_tokens > available]
        if short:
            raise StudyConfigError(f"the training data hold {available:,} tokens, fewer than the unique tokens of "
                                   f"{', '.join(short)}: add stories (speech.stories) or lower the budgets")
        repeat = [r.name for r in runs if r.unique_tokens is None and r.tokens > available]
        if repeat:
            self.log(f"note: the training data hold {available:,} tokens, so {', '.join(repeat)} repeat data "
                     "(more than one epoch: they stay out of the eq.4 fit)")

    def family_data(self, family: str, run: PlannedRun):
        """The family's token store (packed under ``<output>/stores`` on first use) and benchmark datasets."""
        from hf_slm.study.adapters import load_family_data

        benches = {n: self.corpus.unit_dir(family, n) for n in self.config.benchmarks.names}
        return load_family_data(family, self.train_config(run), benches, progress=self.progress)

    def train(self, run: PlannedRun, data):
        from hf_slm.study.adapters import train_run

        record = train_run(self.train_config(run), data, progress=self.progress)
        if not record.finished:
            raise RuntimeError(f"run {run.name} stopped before its budget (stop_after?); rerun to resume it")
        return record

    def evaluate(self, run: PlannedRun, record, data) -> None:
        """Score the run's model under the study's presets; the main preset fills ``metrics`` (contract 3),
        the others go to ``stats['metrics_by_scoring']``; the family is recorded in ``stats['family']``."""
        from hf_slm.study.adapters import evaluate_model

        b = self.config.benchmarks
        presets = [b.scoring, *[p for p in b.also if p != b.scoring]]
        t0 = time.perf_counter()
        results = evaluate_model(Path(run.output_dir) / "model", data, presets, batch_size=b.batch_size)
        record.metrics = results[b.scoring]
        record.stats.update(family=run.family, study=self.config.name, planned_steps=run.steps,
                            metrics_by_scoring=results, eval_seconds=round(time.perf_counter() - t0, 2))
        record.save(run.output_dir)

    # -- stage 2 on a cluster ------------------------------------------------------------------------------
    def write_slurm(self, path: str | Path, **slurm: Any) -> list:
        """Write a Slurm array that trains every unfinished run (``accelerate launch recipes/train.py``);
        rerun the study afterwards to evaluate and report. Returns the runs in array order."""
        from hf_slm.training.sweep import SweepRun, write_slurm

        runs = [r for r in self.plan() if self.states([r])[r.name] in (TODO, STARTED)]
        if not runs:
            raise StudyConfigError("every run of the study is trained: nothing to submit (run the study to "
                                   "evaluate and report)")
        configs = Path(path).parent / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        sweep = []
        for run in runs:
            base = configs / f"{run.name}.base.yaml"
            self.train_config(run).to_yaml(base)
            sweep.append(SweepRun(name=run.name, size=run.size, output_dir=run.output_dir, base_config=str(base),
                                  overrides={"size": run.size, "tokens": run.tokens,
                                             "unique_tokens": run.unique_tokens}))
        options = {**self.config.execution.slurm, **slurm}
        return write_slurm(sweep, path, configs_dir=configs, job_name=f"hf-slm-{self.config.name}",
                           accelerate_args=options.get("accelerate_args", ""),
                           sbatch=options.get("sbatch", []), setup=options.get("setup", []),
                           array_limit=options.get("array_limit"))

    # -- stage 3: report -----------------------------------------------------------------------------------
    def stage_report(self) -> None:
        from hf_slm.scaling.report import ReportOptions, write_report

        records = self.records()
        if not records:
            raise StudyConfigError(f"no finished runs under {self.root / 'runs'}: train them first")
        c = self.config
        options = ReportOptions(
            title=f"Scaling study: {c.name}", delta=c.fits.delta, n_bootstrap=c.fits.bootstrap, seed=c.fits.seed,
            fit_runs=c.fits.runs, min_updates=c.fits.min_updates, starts=c.fits.starts, figures=list(c.report.figures),
            html=c.report.html, text_source=c.text.source, text_table=c.text.table,
            unigram_table=c.unigram.table, departures=list(c.departures), scoring=c.benchmarks.scoring,
            metadata={"study": c.name, "config": c.source_path, "timings": dict(self.timings),
                      "machine": machine_info()},
        )
        paths = write_report(records, self.root / "report", options)
        self.log(f"report: {paths['report.md']}")

    def records(self) -> list[dict]:
        """The finished run records of the study's plan (with their family), as dicts."""
        out = []
        for run in self.plan():
            path = Path(run.output_dir) / "run.json"
            if not path.exists():
                continue
            record = json.loads(path.read_text())
            if record.get("finished", True):
                record.setdefault("family", (record.get("stats") or {}).get("family", run.family))
                out.append(record)
        return out


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (TTS workers), user + system: unlike wall time it
    hardly grows when other jobs share the machine."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _set_threads(threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def machine_info() -> dict[str, Any]:
    """CPU count, load average and the OpenMP wait policy, recorded next to the timings."""
    import platform

    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info
