"""What the user asked for, typed: the settings of ./shard run, ./shard janitor
and ./shard bench, built once from the parsed command line, and the error bad
input raises."""

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from shard_jobs.bench.variants import DEFAULT_VARIANTS, RENAMED, VARIANTS


class RunError(Exception):
    """Bad input: one line, non-zero exit, nothing created."""


def _from_args(cls, args, **given):
    """cls from argparse's parsed arguments: each field not GIVEN from the argument of
    its name (an argument missing is an error here, not a default)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name not in given}
    return cls(**values, **given)


@dataclass(frozen=True)
class RunSettings:
    """./shard run JOB: what the local executor needs to know of the command line."""

    job: str
    # --src PROJECT=PATH items and -e items as given: they are judged when the
    # run is prepared, after the job is frozen (errors come in that order).
    src: tuple[str, ...] = ()
    extra_vars: tuple[str, ...] = ()
    # Job variables that are already values (the janitor's): no -e text to parse.
    variables: dict = field(default_factory=dict)
    cloud: str | None = None
    secret_file: str | None = None
    build: str | None = None
    json: bool = False
    ara: bool = False
    cleanup: bool = False
    # A replayed build's change in Zuul's item (replay.ITEM_KEYS): the zuul
    # variable's branch, ref, change... instead of the local run's own.
    zuul_item: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args, **given) -> "RunSettings":
        given = {
            "src": tuple(args.src),
            "extra_vars": tuple(args.var),
            "variables": {},
            "zuul_item": {},
            **given,
        }
        return _from_args(cls, args, **given)

    @property
    def embedded_cloud(self) -> bool:
        """The job runs against the embedded cloud (no --cloud, no --secret-file)."""
        return not self.cloud and not self.secret_file


@dataclass(frozen=True)
class JanitorSettings:
    """./shard janitor: the shard-janitor job's variables, and where its secret comes from."""

    older_than: str = "3h"
    force: bool = False
    dry_run: bool = False
    # Empty: every shard label (the role's default).
    label_pattern: str = ""
    cloud: str | None = None
    secret_file: str | None = None
    json: bool = False

    @classmethod
    def from_args(cls, args) -> "JanitorSettings":
        return _from_args(cls, args)

    def job_settings(self, build: str, report: Path) -> RunSettings:
        """The run of the shard-janitor job these settings ask for."""
        return RunSettings(
            job="shard-janitor",
            # Typed values, not -e text: the pattern stays the string it is.
            variables={
                "shard_janitor_older_than": self.older_than,
                "shard_janitor_force": self.force,
                "shard_janitor_dry_run": self.dry_run,
                "shard_janitor_label_pattern": self.label_pattern,
                "shard_janitor_report": str(report),
            },
            cloud=self.cloud,
            secret_file=self.secret_file,
            build=build,
        )


@dataclass(frozen=True)
class BenchSettings:
    """./shard bench: which variants, how many runs of each, the scaling, the JSON."""

    # In VARIANTS' order, whatever --only's: the table's rows and the runs' order.
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    repeat: int = 3
    # Numbers of shard jobs run at once, after the variants.
    scaling: tuple[int, ...] = (1, 2, 4, 8)
    # Where the JSON goes (None: bench.json in the bench's directory).
    out: Path | None = None
    json: bool = False
    # One more shard run after the variants, its process tree split by what
    # each process is (where the harness's CPU goes).
    split: bool = False

    @classmethod
    def from_args(cls, args) -> "BenchSettings":
        # Judged in this order, as the bench always has: --scaling, --only, --repeat.
        scaling = tuple(parse_scaling(args.scaling))
        only = parse_only(args.only)
        if args.repeat < 1:
            raise RunError("--repeat must be at least 1")
        return _from_args(
            cls,
            args,
            variants=tuple(v for v in VARIANTS if v in only),
            scaling=scaling,
            out=Path(args.out) if args.out else None,
        )


def parse_scaling(text: str) -> list[int]:
    """--scaling: job counts, comma-separated; none for none."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RunError(f"bad --scaling {text!r}: a list of job counts, e.g. 1,2,4,8") from None
    if any(v < 1 or v > 16 for v in values):
        raise RunError(f"bad --scaling {text!r}: job counts from 1 to 16")
    return values


def parse_only(text: str | None) -> list[str]:
    """--only: variant names, comma-separated (default DEFAULT_VARIANTS)."""
    if text is None:
        return list(DEFAULT_VARIANTS)
    only = [v.strip() for v in text.split(",") if v.strip()]
    for name in only:
        if name in RENAMED:
            raise RunError(f"bad --only {name}: now {RENAMED[name]}")
    unknown = [v for v in only if v not in VARIANTS]
    if unknown or not only:
        raise RunError(f"bad --only {','.join(unknown)}: choose among {', '.join(VARIANTS)}")
    return only


VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_extra_var(item: str) -> dict:
    """One -e of ./shard run, by ansible-playbook's rule: KEY=VALUE is a string;
    a VALUE that starts with { or [ is YAML (a mapping or a list); @FILE is a
    YAML file of variables. Nothing else is converted: 0123 stays "0123"."""
    if item.startswith("@"):
        path = Path(item[1:]).expanduser()
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            reason = str(exc).splitlines()[0]
            raise RunError(
                f"bad -e {item!r}: cannot read a YAML file of variables: {reason}"
            ) from None
        if not isinstance(data, dict):
            raise RunError(f"bad -e {item!r}: the file must hold a mapping of variables")
        return data
    key, sep, value = item.partition("=")
    if not sep or not VAR_NAME_RE.fullmatch(key):
        raise RunError(f"bad -e {item[:60]!r}: expected KEY=VALUE, KEY={{yaml}} or @FILE")
    if value.lstrip().startswith(("{", "[")):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            reason = " ".join(str(exc).split())[:120]
            raise RunError(f"bad -e {key}: its value is not valid YAML: {reason}") from None
        if not isinstance(parsed, (dict, list)):
            raise RunError(f"bad -e {key}: a value in braces or brackets must be a mapping or list")
        return {key: parsed}
    return {key: value}
