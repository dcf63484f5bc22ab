"""params.yaml and dvc.yaml: every params section agrees with its config dataclass, both ways.

The checks name the file and the key, and dvc.yaml names every path once."""

from __future__ import annotations

import dataclasses
import shlex
import typing
from dataclasses import dataclass

import pytest
import yaml

from model.evaluate import EvaluateConfig
from model.export import ExportConfig
from model.kernels import KernelsConfig
from model.report import ReportConfig
from model.sample import SampleConfig
from model.train import TrainConfig
from pipeline.batches import BatchesConfig
from pipeline.clean import CleanConfig
from pipeline.common import ParamsError, load_params
from pipeline.config import check_section, keys, section, setting
from pipeline.crawl import CrawlConfig
from pipeline.dask_engine import DaskConfig
from pipeline.dedupe import DedupeConfig
from pipeline.split import SplitConfig
from pipeline.vocab import VocabConfig
from tests.helpers.params import REPO_PARAMS, repo_params, write_params

# Every top-level section of params.yaml and the dataclass that checks it (``sources`` entries are
# checked per entry by pipeline.crawl.source_entry and the spiders' ARGUMENTS).
SCHEMAS = {"crawl": CrawlConfig, "clean": CleanConfig, "dedupe": DedupeConfig, "dask": DaskConfig,
           "split": SplitConfig,
           "vocab": VocabConfig, "batches": BatchesConfig, "train": TrainConfig, "sample": SampleConfig,
           "evaluate": EvaluateConfig, "report": ReportConfig, "export": ExportConfig, "kernels": KernelsConfig}
REPO_ROOT = REPO_PARAMS.parent


def test_every_section_has_a_validator_and_every_validator_a_section():
    params = load_params(REPO_PARAMS)
    assert set(params) - {"sources"} == set(SCHEMAS)


def _key_mismatches(schema: type, data: dict, prefix: str) -> list[str]:
    extra = sorted(set(data) - set(keys(schema)))
    problems = [f"{prefix}.{k}: in params.yaml, not in {schema.__name__}" for k in extra]
    problems += [f"{prefix}.{k}: in {schema.__name__}, not in params.yaml" for k in keys(schema) if k not in data]
    hints = typing.get_type_hints(schema)
    for name in keys(schema):
        if dataclasses.is_dataclass(hints[name]) and isinstance(data.get(name), dict):
            problems += _key_mismatches(hints[name], data[name], f"{prefix}.{name}")
    return problems


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_section_keys_and_validator_agree(name):
    data = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))[name]
    assert _key_mismatches(SCHEMAS[name], data, name) == []
    assert section(name, SCHEMAS[name], load_params(REPO_PARAMS)) == data  # values come back unchanged


def test_values_are_returned_as_written():
    cfg = section("train", TrainConfig, repo_params({"train": {"max_minutes": 12}}))
    assert cfg["max_minutes"] == 12 and type(cfg["max_minutes"]) is int  # a float key keeps the file's int


@pytest.mark.parametrize("overrides, message", [
    ({"clean": {"workers": -1}}, "clean.workers = -1: expected an integer >= 0"),
    ({"clean": {"lowercase": "no"}}, "clean.lowercase = 'no': expected true or false"),
    ({"clean": {"unicode_form": "NFD"}}, "clean.unicode_form = 'NFD': expected one of 'NFC', 'NFKC'"),
    ({"clean": {"min_chars": 50, "max_chars": 10}}, "clean.min_chars (50) must be <= clean.max_chars (10)"),
    ({"dedupe": {"bands": 30}}, "dedupe.num_perm (128) must be a multiple of dedupe.bands (30)"),
    ({"dedupe": {"threshold": 1.5}}, "dedupe.threshold = 1.5: expected a number <= 1"),
    ({"dedupe": {"seed": True}}, "dedupe.seed = True: expected an integer"),
    ({"split": {"fractions": {"train": 0.5, "val": 0.1, "test": 0.1}}}, "split.fractions must sum to 1"),
    ({"vocab": {"max_size": 2}}, "vocab.max_size = 2: expected an integer >= 3"),
    ({"vocab": {"max_size": None}}, None),
    ({"train": {"model": {"num_layers": 0}}}, "train.model.num_layers = 0: expected an integer >= 1"),
    ({"train": {"evolution": {"temperatures": [1, 0]}}},
     "train.evolution.temperatures = [1, 0]: expected every item to be a number > 0"),
    ({"train": {"lr_schedule": "linear"}}, "train.lr_schedule = 'linear': expected one of 'cosine', 'constant'"),
    ({"sample": {"primes": ["a", 3]}}, "sample.primes = ['a', 3]: expected a list of strings"),
    ({"evaluate": {"compressors": ["zstd_19"]}},
     "evaluate.compressors = ['zstd_19']: expected every item to be one of"),
    ({"crawl": {"log_level": "LOUD"}}, "crawl.log_level = 'LOUD': expected one of"),
    ({"export": {"check_tolerance": 0}}, "export.check_tolerance = 0: expected a number > 0"),
])
def test_bad_values_name_the_file_and_the_key(tmp_path, overrides, message):
    path = write_params(tmp_path / "mine.yaml", overrides)
    name = next(iter(overrides))
    if message is None:
        section(name, SCHEMAS[name], load_params(path))
        return
    with pytest.raises(ParamsError) as err:
        section(name, SCHEMAS[name], load_params(path))
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_missing_and_unknown_keys_are_errors(tmp_path):
    params = load_params(REPO_PARAMS)
    del params["report"]["top_k"]
    with pytest.raises(ParamsError, match=r"missing key\(s\) report\.top_k: every setting is stated"):
        section("report", ReportConfig, params)
    del params["train"]["evolution"]["seed"]
    with pytest.raises(ParamsError, match=r"missing key\(s\) train\.evolution\.seed"):
        section("train", TrainConfig, params)
    params = repo_params({"vocab": {"min_cuont": 3}})
    with pytest.raises(ParamsError, match=r"unknown key\(s\) vocab\.min_cuont; known keys: max_size, min_count"):
        section("vocab", VocabConfig, params)
    path = tmp_path / "empty.yaml"
    path.write_text("clean: {}\n")
    with pytest.raises(ParamsError, match=rf"^{path}: no section 'vocab'; it needs the keys min_count, max_size"):
        section("vocab", VocabConfig, load_params(path))


@dataclass(frozen=True)
class Inner:
    size: int = setting(ge=1, le=4)


@dataclass(frozen=True)
class Outer:
    name: str
    ratio: float | None = setting(gt=0)
    inner: Inner
    tags: list[str] = setting(choices=("a", "b"))


def test_check_section_on_a_dataclass_of_its_own():
    good = {"name": "x", "ratio": None, "inner": {"size": 4}, "tags": ["a"]}
    assert check_section(Outer, good, where="f.yaml", prefix="o") == good
    for bad, message in [({"inner": {"size": 5}}, "o.inner.size = 5: expected an integer <= 4"),
                         ({"inner": 3}, "section 'o.inner' must be a mapping, got int"),
                         ({"ratio": "1"}, "o.ratio = '1': expected a number or null"),
                         ({"tags": ["c"]}, "o.tags = ['c']: expected every item to be one of 'a', 'b'")]:
        with pytest.raises(ParamsError, match="^f.yaml: ") as err:
            check_section(Outer, {**good, **bad}, where="f.yaml", prefix="o")
        assert message in str(err.value)


# -- paths: named once, as flags in dvc.yaml's cmd -------------------------------------------------
CODE = (".py", "crawler", "contracts", "demoforum", "scrapy.cfg", "model/web/", "model/templates")  # code, not data
NOT_OUTS = {"checkpoints/train"}  # train's resumable checkpoints: a DVC out would be deleted before each run


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    crawl = stages.pop("crawl")["do"]  # foreach: check it for one source name
    stages["crawl@demo"] = yaml.safe_load(yaml.safe_dump(crawl).replace("${item}", "demo"))
    return stages


def _declared(stage: dict) -> list[str]:
    paths = []
    for kind in ("deps", "outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return [p for p in paths if not any(p.endswith(c) or p.startswith(c) for c in CODE)]


def _cmd_paths(cmd: str) -> list[str]:
    words = shlex.split(cmd)
    return [value for flag, value in zip(words, words[1:]) if flag.startswith("--") and flag not in ("--source",)]


@pytest.mark.parametrize("name", sorted(_stages()))
def test_cmd_names_every_path_the_stage_declares(name):
    stage = _stages()[name]
    in_cmd = _cmd_paths(stage["cmd"])
    for path in _declared(stage):
        assert any(path == p or p == "." or path.startswith(p.rstrip("/") + "/") for p in in_cmd), \
            f"{name}: {path} is declared in dvc.yaml but its cmd does not name it"
    declared = _declared(stage)
    for path in in_cmd:
        if path == "." or path in NOT_OUTS:
            continue
        assert any(d == path or d.startswith(path + "/") for d in declared), \
            f"{name}: cmd names {path}, which is neither a dep nor an out"

