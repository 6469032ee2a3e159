"""Every figure the README quotes, measured again today, each beside its anchor from the same run.

Run:  .venv/bin/python benchmarks/headline.py [--with-full] [--only NAME ...] [--no-write]

It makes a scratch cache whose data sets are links to this machine's cache and whose models folder starts
empty, trains every family's quick preset into it with the real CLI (sentiment, vision, translation,
language model), then runs the side-by-side benchmarks on those fresh models: inference against
transformers, tokenizers against tiktoken and HF tokenizers, `glassformer serve` and the studio under
load, and the studio's latency per interaction. Each benchmark hands its figures over through
``$GLASSFORMER_FIGURES`` (:mod:`_figures`), with its anchor, spread, target and the load average.

The result is one dated table with the CPU's flags, the precision ``auto`` picks, and the load before and
after. It is appended to ``benchmarks/RESULTS.md`` and replaces the README's block between
``<!-- headline:begin -->`` and ``<!-- headline:end -->``, so the README quotes the last run and nothing
older. About 20 minutes on 2 cores; ``--with-full`` adds the 30-minute language model and the
translation full preset (about 55 minutes more). A row during which processes outside the benchmark
kept more than a quarter of a core busy (from /proc/stat, minus the benchmark's own CPU time) is void;
the table says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
README = ROOT / "README.md"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- headline:begin -->", "<!-- headline:end -->"
SECTION = "## Headline figures"
GLASSFORMER = [sys.executable, "-m", "glassformer.cli"]


@dataclass
class Context:
    home: Path  # the scratch GLASSFORMER_HOME
    figures: Path  # the JSON-lines file every benchmark appends to
    env: dict[str, str]

    def record(self, figure: str, value: float, unit: str, **fields: object) -> None:
        """A figure this script measured itself (a training run's score), in the same file as the benchmarks'."""
        row = {"figure": figure, "value": value, "unit": unit, "anchor": "", "anchor_value": None,
               "spread": "", "target": "", "met": None, "note": "", "load": round(os.getloadavg()[0], 2), **fields}
        with self.figures.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")

    def run(self, args: list[str], timeout: float = 3600) -> subprocess.CompletedProcess:
        """`args` in the scratch cache's environment; a failure stops the whole run with the command's stderr."""
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args[1:])} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return done


def train(ctx: Context, task: str, preset: str) -> tuple[dict, float]:
    """`glassformer train TASK --preset PRESET --json` into the scratch cache's default folder; figures and wall time."""
    began = time.perf_counter()
    done = ctx.run([*GLASSFORMER, "train", task, "--preset", preset, "--json"])
    return json.loads(done.stdout.strip().splitlines()[-1]), time.perf_counter() - began


def sentiment_quick(ctx: Context) -> None:
    figures, wall = train(ctx, "sentiment", "quick")
    ctx.record("sentiment quick preset: test accuracy (movie reviews)", 100 * figures["accuracy"], "%",
               note=f"{figures['steps']} steps at {figures['precision']}; n={figures['n']}")
    ctx.record("sentiment quick preset: whole `train` command", wall, "s",
               note=f"training {figures['train_seconds']:.0f} s (MiniLM already fetched)")


def vision_quick(ctx: Context) -> None:
    figures, wall = train(ctx, "vit", "quick")
    ctx.record("vision quick preset: test accuracy (Fashion-MNIST)", 100 * figures["accuracy"], "%",
               anchor="chance (10 classes)", anchor_value=10.0,
               note=f"{figures['steps']} steps, {wall / 60:.1f} min for the whole command")


def translation_quick(ctx: Context, preset: str = "quick") -> None:
    figures, wall = train(ctx, "translate", preset)
    ctx.record(f"translation {preset} preset: test BLEU (de→en)", figures["bleu"], "BLEU",
               anchor="retrieval baseline (nearest training pair)", anchor_value=figures["retrieval_bleu"],
               note=f"chrF {figures['chrf']:.1f} (retrieval {figures['retrieval_chrf']:.1f}); {figures['steps']} "
                    f"steps, {wall / 60:.1f} min for the whole command")


def lm_quick(ctx: Context, preset: str = "quick") -> None:
    figures, wall = train(ctx, "lm", preset)
    chain = figures.get("markov") or {}
    crossing = figures.get("crossing")
    ctx.record(f"language model {preset} preset: held-out bits/char (Shakespeare)", figures["bits_per_char"],
               "bits/char", anchor=f"Markov chain (order {chain.get('order')}, same works and BPE)",
               anchor_value=chain.get("bits_per_char"),
               target={"quick": "<= 2.25", "full": "<= 1.95"}[preset],
               met=figures["bits_per_char"] <= {"quick": 2.25, "full": 1.95}[preset],
               note=f"{figures['steps']} steps, {wall / 60:.2f} min for the whole command"
                    + (f"; below the chain from {crossing['seconds'] / 60:.1f} min" if crossing else ""))


def benchmark(script: str, *args: str, timeout: float = 1800) -> Callable[[Context], None]:
    """A job that runs ``benchmarks/SCRIPT ARGS``; the script records its own figures."""
    def job(ctx: Context) -> None:
        ctx.run([sys.executable, str(HERE / script), *args], timeout=timeout)
    job.__name__ = script.removesuffix(".py")
    return job


def sentiment_dir(ctx: Context) -> str:
    return str(ctx.home / "models" / "sentiment-quick")


def serve_load(ctx: Context) -> None:
    benchmark("serve_load.py", "--model", sentiment_dir(ctx), "--levels", "1", "50", "--rounds", "3")(ctx)


def studio_load(ctx: Context) -> None:
    benchmark("studio_load.py", "--model", sentiment_dir(ctx))(ctx)


def studio_latency(ctx: Context) -> None:
    benchmark("studio_latency.py", "--sentiment-model", sentiment_dir(ctx))(ctx)


# In order: the training runs first (the later jobs use their models), then the benchmarks.
JOBS: dict[str, Callable[[Context], None]] = {
    "sentiment": sentiment_quick,
    "vision": vision_quick,
    "translation": translation_quick,
    "lm": lm_quick,
    "inference": benchmark("inference.py", "--repeats", "5"),
    "tokenizers": benchmark("tokenizers.py"),
    "scale-out": benchmark("scaleout.py", "--steps", "60"),
    "serve": serve_load,
    "studio-load": studio_load,
    "studio-latency": studio_latency,
}
FULL_JOBS: dict[str, Callable[[Context], None]] = {
    "lm-full": lambda ctx: lm_quick(ctx, "full"),
    "translation-full": lambda ctx: translation_quick(ctx, "full"),
}


class OtherWork:
    """How many cores, on average, work outside this script and its children kept busy while the block ran.

    The machine's busy time (``/proc/stat``) minus this process's and its waited-for descendants' CPU time,
    over the wall time. A load average cannot tell this: it lags by a minute, so a job started just after
    another one always looks loaded.
    """

    THRESHOLD = 0.25  # cores of other work that void a row

    @staticmethod
    def _busy() -> float:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        import resource

        return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for field in ("ru_utime", "ru_stime"))

    def __enter__(self) -> "OtherWork":
        self.cores = float("nan")
        self._start = (time.perf_counter(), self._busy(), self._ours())
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy, ours = (now - then for now, then in zip((time.perf_counter(), self._busy(), self._ours()),
                                                            self._start))
        self.cores = max(busy - ours, 0.0) / max(wall, 1e-9)


def scratch_home(root: Path) -> Path:
    """A cache whose data sets are links to the real cache's and whose models folder is empty."""
    from glassformer.data import cache_dir

    real = cache_dir()
    home = root / "cache"
    (home / "models").mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name != "models":
            (home / entry.name).symlink_to(entry)
    return home


def cpu_flags() -> str:
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "none of avx2/avx512"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def number(value: float | None) -> str:
    """A figure with the digits it deserves: three significant ones, thousands separated."""
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render(rows: list[dict], header: dict) -> str:
    """The dated headline table (Markdown) for `rows` as :mod:`_figures` writes them."""
    void = [row for row in rows if row["other"] > OtherWork.THRESHOLD]
    lines = [
        f"{SECTION}, {header['date']} (`benchmarks/headline.py`{header['flags']})",
        "",
        f"{header['cpu']}, {header['cores']} cores, CPU flags: {header['cpu_flags']}; `precision=auto` is "
        f"{header['precision']} here; torch {header['torch']}. Load average {header['load_before']:.2f} before, "
        f"{header['load_after']:.2f} after; {header['minutes']:.1f} minutes in all. Every anchor was measured in "
        f"the same run. \"Other work\": the cores that processes outside the benchmark kept busy on average "
        f"during its job (machine busy time minus the job's own CPU time); a row above {OtherWork.THRESHOLD} is void.",
        "",
        "| figure | value | anchor (same run) | anchor's value | value ÷ anchor | spread | target | other work |",
        "|---|---:|---|---:|---:|---|---|---:|",
    ]
    for row in rows:
        target = f"{row['target']} ({'met' if row['met'] else 'missed'})" if row["target"] else ""
        note = f"; {row['note']}" if row["note"] else ""
        ratio = f"{row['value'] / row['anchor_value']:.2f}×" if row["anchor_value"] else ""
        lines.append(f"| {row['figure']}{note} | {number(row['value'])} {row['unit']} | {row['anchor']} | "
                     f"{number(row['anchor_value'])} | {ratio} | {row['spread']} | {target} | {row['other']:.2f} cores |")
    if void:
        lines += ["", f"{len(void)} row(s) shared the cores with more than {OtherWork.THRESHOLD} of a core of other "
                      "work on average and are void."]
    return "\n".join(lines) + "\n"


def replace_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(f".{path.name}.headline-tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


def write(table: str, readme: Path = README, results: Path = RESULTS) -> None:
    """Append `table` to `results` and put it between the markers of `readme` (each file replaced whole)."""
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} block for the table")
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    replace_atomically(results, results.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + table)
    replace_atomically(readme, text[:start] + "\n" + table + text[stop:])


def last_table(results_text: str) -> str | None:
    """The newest headline table in RESULTS.md's text (up to the next section), or None before the first run."""
    start = results_text.rfind("\n" + SECTION)
    if start < 0:
        return None
    ends = [i for i in (results_text.find("\n## ", start + 1), results_text.find("\n### ", start + 1)) if i >= 0]
    return results_text[start + 1: min(ends) + 1 if ends else None].rstrip("\n") + "\n"


def readme_table(readme_text: str) -> str:
    """What stands between the README's headline markers."""
    start, stop = readme_text.index(BEGIN) + len(BEGIN), readme_text.index(END)
    return readme_text[start:stop].strip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-full", action="store_true", help="also the full presets (about 55 minutes more)")
    parser.add_argument("--only", nargs="+", choices=[*JOBS, *FULL_JOBS], help="run these jobs only (implies "
                        "--no-write: a partial table must not replace the README's)")
    parser.add_argument("--no-write", action="store_true", help="print the table; leave RESULTS.md and README alone")
    args = parser.parse_args()
    jobs = {**JOBS, **(FULL_JOBS if args.with_full else {})}
    if args.only:
        jobs = {name: job for name, job in {**JOBS, **FULL_JOBS}.items() if name in args.only}

    import torch

    from glassformer.precision import resolve

    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="glassformer-headline-") as scratch:
        home = scratch_home(Path(scratch))
        figures = Path(scratch, "figures.jsonl")
        figures.touch()
        env = {**os.environ, "GLASSFORMER_HOME": str(home), "GLASSFORMER_FIGURES": str(figures),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
        ctx = Context(home, figures, env)
        rows: list[dict] = []
        for name, job in jobs.items():
            print(f"[{time.strftime('%H:%M:%S')}] {name} (load average {os.getloadavg()[0]:.2f})", flush=True)
            with OtherWork() as other:
                job(ctx)
            lines = figures.read_text(encoding="utf-8").splitlines()
            rows += [{**json.loads(line), "other": round(other.cores, 2)} for line in lines[len(rows):] if line.strip()]
    header = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "flags": " --with-full" if args.with_full else "", "cpu": cpu_model(), "cores": os.cpu_count(),
              "cpu_flags": cpu_flags(), "precision": resolve("auto", "cpu"), "torch": torch.__version__,
              "load_before": load_before, "load_after": os.getloadavg()[0],
              "minutes": (time.perf_counter() - began) / 60}
    table = render(rows, header)
    print(table)
    if not (args.no_write or args.only):
        write(table)
        print(f"written to {RESULTS.relative_to(ROOT)} and {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
