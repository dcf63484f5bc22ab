"""Sample text from the trained model: a command line for people, and the DVC ``sample`` stage.

Command line (defaults to the model the pipeline trained, ``models/lstm/``)::

    python -m model.sample --prime "ROMEO" --temperature 0.7 --n 5 --length 400 \\
        [--top-k K] [--top-p P] [--min-length M] [--greedy | --beam W [--length-norm A]] [--seed S] \\
        [--model DIR] [--vocab FILE] [--json]

prints each sample as readable text (prime + continuation) or, with ``--json``, one JSON object
per line (the fields of ``model.sampler.Sample``). ``--temperature 0`` means greedy.

DVC stage (``dvc.yaml``: ``python -m model.sample --report reports/samples.jsonl``): reads
``models/lstm/`` and the ``sample`` section of params.yaml, and writes one JSON line per sample:
``n`` samples for every prime x temperature (the seed of each combination is ``seed`` + its
index, so any line is reproduced by the command line with that seed), plus one greedy and one
beam-search text per prime. Fields: prime, method, temperature, seed, text, mean_logprob (nats
per generated token, END included when produced), n_tokens, ended, top_k, top_p, stream,
beam_width, length_norm.

params.yaml ``sample`` keys: primes, temperatures, n, length, top_k, top_p, seed, greedy,
beam_width, length_norm (checked by ``SampleConfig``; meanings in params.yaml).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from model import kernels
from model.artifacts import DEFAULT_MODEL_DIR, ModelFolderError
from model.sampler import Sample, SamplerError, StatefulSampler
from pipeline.common import ParamsError, load_params, setup_logging, write_jsonl_atomic
from pipeline.config import section, setting

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SampleConfig:
    """The ``sample`` section of params.yaml (meanings there)."""

    primes: list[str]
    temperatures: list[float] = setting(gt=0)  # greedy has its own key
    n: int = setting(ge=1)
    length: int = setting(ge=1)
    top_k: int = setting(ge=0)
    top_p: float = setting(gt=0, le=1)
    seed: int = setting(ge=0)
    greedy: bool
    beam_width: int = setting(ge=0)
    length_norm: float = setting(ge=0)


def sample_report(sampler: StatefulSampler, p: dict[str, Any]) -> list[Sample]:
    """Every sample the stage writes, in a fixed order: per prime, temperatures, then greedy and beam."""
    samples: list[Sample] = []
    combo = 0
    for prime in p["primes"]:
        for temperature in p["temperatures"]:
            samples += sampler.generate(prime, p["n"], p["length"], float(temperature), p["top_k"] or None,
                                        p["top_p"] if p["top_p"] < 1 else None, seed=p["seed"] + combo)
            combo += 1
        if p["greedy"]:
            samples.append(sampler.greedy(prime, p["length"]))
        if p["beam_width"]:
            samples.append(sampler.beam(prime, p["beam_width"], p["length"], float(p["length_norm"])))
    return samples


def write_jsonl(path: str | Path, samples: Sequence[Sample]) -> None:
    write_jsonl_atomic(path, (s.to_dict() for s in samples), sort_keys=True)


def format_sample(s: Sample, i: int, n: int) -> str:
    """A header line with how the sample was made, then prime + continuation."""
    if s.method == "beam":
        how = f"beam width {s.beam_width}, length norm {s.length_norm:g}"
    elif s.method == "greedy":
        how = "greedy"
    else:
        how = (f"temperature {s.temperature:g}" + (f", top-k {s.top_k}" if s.top_k else "")
               + (f", top-p {s.top_p:g}" if s.top_p else "") + f", seed {s.seed}")
    stop = "stopped at END" if s.ended else "length limit"
    return (f"=== sample {i}/{n} ({how}; {len(s.text)} chars, {stop}; "
            f"mean log-prob {s.mean_logprob:.3f} nats/char) ===\n{s.full_text}\n")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m model.sample", description=__doc__.split("\n\n")[0])
    ap.add_argument("--prime", default="", help="text that warms the state first (default: start of a document)")
    ap.add_argument("--n", type=int, default=1, help="number of samples (streams in one batch)")
    ap.add_argument("--length", type=int, default=400, help="maximum characters per sample (stops earlier at END)")
    ap.add_argument("--min-length", type=int, default=0, help="no END before this many characters (sampling, greedy)")
    ap.add_argument("--temperature", type=float, default=0.8, help="> 0 samples; 0 means greedy; < 0 is an error")
    ap.add_argument("--top-k", type=int, default=None, help="sample only among the K most likely characters")
    ap.add_argument("--top-p", type=float, default=None, help="nucleus sampling: smallest set with probability P")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="most likely character at every step")
    mode.add_argument("--beam", type=int, metavar="W", help="beam search with W beams")
    ap.add_argument("--length-norm", type=float, default=1.0, help="beam score = sum log p / n_tokens ** A")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default: %(default)s)")
    ap.add_argument("--vocab", default=None, help="check this vocabulary file against the model's")
    ap.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    ap.add_argument("--report", metavar="JSONL", default=None,
                    help="DVC stage: write the samples listed in params.yaml `sample` to JSONL")
    ap.add_argument("--params", default="params.yaml", help="params file of the --report stage")
    return ap


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``sample`` section, and ``kernels`` under ``kernels``."""
    return {**section("sample", SampleConfig, params), "kernels": kernels.load_config(params)}


def pin_kernels(params_file: str, report: bool) -> None:
    """The stage (``report``) pins the CPU kernels as its params say; so does the command line when
    the params file is there, so that it reproduces the stage's samples (model/kernels.py)."""
    if report or Path(params_file).exists():
        kernels.pin(load_config(load_params(params_file))["kernels"], "model.sample")


def run_stage(model_dir: str, report: str, params_file: str = "params.yaml") -> None:
    """The DVC stage: the params-driven sample set -> ``report`` (JSONL)."""
    params = load_config(load_params(params_file))
    samples = sample_report(StatefulSampler.from_dir(model_dir), params)
    write_jsonl(report, samples)
    log.info("wrote %d samples (%d primes x %d temperatures x %d, greedy %s, beam %d) to %s", len(samples),
             len(params["primes"]), len(params["temperatures"]), params["n"], params["greedy"], params["beam_width"],
             report)


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging()
    ap = build_parser()
    args = ap.parse_args(argv)
    deterministic = args.greedy or args.beam is not None
    if deterministic and (args.top_k is not None or args.top_p is not None):
        ap.error("--top-k/--top-p apply to sampling, not to --greedy or --beam")
    if deterministic and args.n != 1:
        ap.error("--greedy and --beam are deterministic: they give one text, so --n must be 1")
    try:
        pin_kernels(args.params, bool(args.report))
        if args.report:
            run_stage(args.model, args.report, args.params)
            return 0
        sampler = StatefulSampler.from_dir(args.model, args.vocab)
        if args.greedy:
            samples = [sampler.greedy(args.prime, args.length, min_length=args.min_length)]
        elif args.beam is not None:
            samples = [sampler.beam(args.prime, args.beam, args.length, args.length_norm)]
        else:
            samples = sampler.generate(args.prime, args.n, args.length, args.temperature, args.top_k, args.top_p,
                                       args.seed, min_length=args.min_length, progress=sys.stderr.isatty())
    except (ModelFolderError, SamplerError, ParamsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for i, s in enumerate(samples, 1):
        print(json.dumps(s.to_dict(), ensure_ascii=False) if args.json else format_sample(s, i, len(samples)))
    return 0


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
