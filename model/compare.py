"""``python -m model.compare``: runs side by side, in ``reports/compare.html`` and ``reports/compare.md``.

    python -m model.compare                     # the workspace, HEAD and up to 5 experiments, newest first
    python -m model.compare HEAD short HEAD~3   # these runs: experiment names, git revisions or `workspace`
    python -m model.compare --baseline short    # differences against `short` (default: HEAD)

Not a pipeline stage: it reads across runs (git history, DVC experiments and the DVC cache), which
no stage can declare as a dependency, and its page changes whenever an experiment is added. That is
also why the report (a stage, whose bytes dvc.lock pins) does not show how its run stands against
the previous commit's run: it links here instead. Nothing is re-run: model/runs.py reads each run's
stored files and says why any is missing; model/compare_view.py shapes them; the page is rendered from
``model/templates/compare.html`` with the report's stylesheet and macros (model/pages.py).

Runs whose files are all identical are shown once under both names (after ``dvc exp run`` the
workspace holds the experiment it just ran: ``workspace = short``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Sequence

from model import compare_view, runs
from model.pages import fence, fmt, md_cell, md_table, render
from pipeline.common import atomic_path, setup_logging

log = logging.getLogger(__name__)
SECTIONS = [("runs", "Runs"), ("metrics", "Headline metrics"), ("params", "Params that differ"),
            ("curves", "Validation curves"), ("lengths", "By document length"),
            ("samples", "Samples side by side"), ("data", "Data")]


def collect(repo: Path, names: Sequence[str], baseline: str, max_experiments: int) -> tuple[list[runs.Run], int]:
    """The runs to show (identical ones merged) and the index of the baseline run among them."""
    show = runs.exp_show(repo)
    specs = [runs.resolve(repo, n, show) for n in names] if names else runs.default_specs(show, max_experiments)
    loaded = runs.merge_identical([runs.load(repo, s) for s in specs])
    for i, run in enumerate(loaded):
        if baseline in run.labels:
            return loaded, i
    spec = runs.resolve(repo, baseline, show)
    for i, run in enumerate(loaded):
        if spec.rev and run.commit == spec.rev:
            return loaded, i
    loaded.append(runs.load(repo, spec))
    return loaded, len(loaded) - 1


def markdown(ctx: dict[str, Any]) -> str:
    """compare.md: the page's tables and samples as Markdown, for review and terminals."""
    out = ["# kopitiam: runs compared", "", f"Baseline: {md_cell(ctx['baseline'])}. "
           "Differences to it in brackets; `*` marks the best value of a column.", ""]
    out += [f"- {md_cell(s)}" for s in ctx["standing"]]
    out += ["", "## Runs", "", *md_table(["run", "commit", "created", "verdict", "missing"], [
        (r["label"], r["commit"], r["created"], r["verdict"], "; ".join(f"{p}: {why}" for p, why in r["missing"]))
        for r in ctx["runs"]])]
    out += ["", "## Headline metrics", "", *md_table(*ctx["headline"])]
    out += ["", "## Test bits per character by model", "", *md_table(*ctx["models"])]
    out += ["", "## Params that differ", ""]
    out += md_table(["param", *ctx["labels"]], ctx["params"]) if ctx["params"] else ["(none)"]
    if ctx["by_length"]:
        out += ["", "## LSTM test bits per character by document length", "",
                *md_table(["document length (chars)", *ctx["labels"]], ctx["by_length"])]
    if ctx["data"]["differ"]:
        out += ["", "## Data", "", *md_table(["", *ctx["labels"]], ctx["data"]["rows"])]
    out += ["", "## Samples side by side", ""]
    for title, cells in ctx["samples"]["rows"]:
        out += [f"### {md_cell(title)}", ""]
        for label, c in zip(ctx["labels"], cells):
            if c is not None:
                s, note = c
                out += [f"**{md_cell(label)}**" + (f" ({md_cell(note)})" if note else ""), "",
                        fence((s["prime"] + s["text"])[: ctx["sample_chars"]]), ""]
    return "\n".join(out).rstrip() + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m model.compare", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*", help="experiment names, git revisions or `workspace` (default: the "
                                            "workspace, HEAD and HEAD's experiments)")
    ap.add_argument("--baseline", default="HEAD", help="the run differences are taken against (default HEAD)")
    ap.add_argument("--max-experiments", type=int, default=5, help="newest experiments shown by default (5)")
    ap.add_argument("--repo", type=Path, default=Path("."), help="the DVC repository (default: here)")
    ap.add_argument("--out", type=Path, help="HTML page (default: REPO/reports/compare.html)")
    ap.add_argument("--markdown", type=Path, help="Markdown page (default: REPO/reports/compare.md)")
    ap.add_argument("--sample-chars", type=int, default=600, help="longest sample text shown (600)")
    args = ap.parse_args(argv)
    if args.max_experiments < 0 or args.sample_chars < 1:
        ap.error("--max-experiments must be >= 0 and --sample-chars >= 1")
    setup_logging()
    loaded, base = collect(args.repo, args.runs, args.baseline, args.max_experiments)
    ctx = compare_view.context(loaded, base, args.sample_chars)
    out = args.out or args.repo / "reports/compare.html"
    md = args.markdown or args.repo / "reports/compare.md"
    write(out, render("compare.html", sections=SECTIONS, **ctx))
    write(md, markdown(ctx))
    log.info("compared %s runs (baseline %s; %s with missing files): wrote %s and %s", fmt(len(loaded)),
             ctx["baseline"], sum(1 for r in loaded if r.missing), out, md)


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2

    run_main(main)
