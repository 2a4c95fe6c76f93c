"""./shard: the command line of shard-jobs.

The parser imports nothing outside the standard library (each command imports
its module when it runs), so that help answers on a fresh clone before the
tool virtualenv exists. --json means one thing everywhere: the command's
result, alone, as JSON on standard output (no progress lines there; a
failure's line still goes to standard error).
"""

import argparse
import os
import sys

from shard_jobs import testing


def _cloud(args) -> int:
    from shard_jobs import cloud

    if args.action != "up" and args.source:
        sys.stderr.write(f"shard cloud {args.action}: --source is for up\n")
        return 2
    if (args.action == "upgrade") != bool(args.to):
        sys.stderr.write(
            "shard cloud: upgrade needs --to PROJECT=[PATH@]REF, and only upgrade takes it\n"
        )
        return 2
    if args.action == "up":
        return cloud.up(args.source)
    if args.action == "upgrade":
        return cloud.upgrade(args.to)
    if args.action == "status":
        return cloud.status(as_json=args.json)
    if args.action == "down":
        return cloud.down()
    return cloud.destroy()


def _run(args) -> int:
    from shard_jobs import commands

    if args.list:
        return commands.list_jobs(as_json=args.json)
    if not args.job and not args.from_zuul:
        sys.stderr.write("shard run: name a job (./shard run --list lists them)\n")
        return 2
    return commands.run(args)


def _janitor(args) -> int:
    from shard_jobs import commands

    return commands.janitor(args)


def _bench(args) -> int:
    from shard_jobs import commands

    return commands.bench(args)


def _docs(args) -> int:
    from shard_jobs import docs

    return docs.main(args)


def _test(args) -> int:
    from shard_jobs import testing

    return testing.main(args.tiers, args.pytest_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shard",
        description="Test an OpenStack change as a new shard of an existing cloud.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("cloud", help="the embedded cloud: up, status, upgrade, down, destroy")
    p.add_argument("action", choices=["up", "status", "upgrade", "down", "destroy"])
    p.add_argument("--json", action="store_true", help="status as JSON, for scripts")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PROJECT=PATH[@REF]",
        help="up: a new cloud runs this commit of the project's git repository instead of "
        "its release (openstack/nova, openstack/glance; REF defaults to HEAD); the cloud keeps "
        "following it",
    )
    p.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="PROJECT=[PATH@]REF",
        help="upgrade: move the running cloud forward in place to this commit (migrations, "
        "control plane, then computes; glance's contraction last); PATH only when the cloud "
        "runs the project's release",
    )
    p.set_defaults(func=_cloud)

    p = sub.add_parser("run", help="run a job from zuul.d/ locally, the way Zuul runs it")
    p.add_argument("job", nargs="?", help="job name, e.g. shard-nova-compute")
    p.add_argument(
        "--list", action="store_true", help="list the jobs of zuul.d/ with their descriptions"
    )
    p.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="PROJECT=PATH",
        help="use this source tree for PROJECT (e.g. openstack/nova=~/src/nova); repeatable",
    )
    p.add_argument("--cloud", help="a cloud of clouds.yaml instead of the embedded cloud")
    p.add_argument(
        "--secret-file",
        help="YAML holding the job secret (cloud entry, transport_url) for --cloud",
    )
    p.add_argument(
        "-e",
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job variable, as ansible-playbook -e takes it: KEY=VALUE is a string, "
        "KEY={yaml} or KEY=[yaml] a mapping or list, @FILE a YAML file of variables; repeatable",
    )
    p.add_argument(
        "--from-zuul",
        metavar="LOG_URL_OR_DIR",
        help="run again the job of a finished build, with its variables and change, from its "
        "logs' zuul-info/inventory.yaml; the change's tree with --src",
    )
    p.add_argument("--build", help="build id (default: a new random one)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--ara", action="store_true", help="record the run with ARA")
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="only run the job's cleanup playbooks for --build (after a killed run)",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "janitor", help="delete what expired shard runs left in the cloud (only labelled things)"
    )
    p.add_argument(
        "--older-than",
        default="3h",
        metavar="DURATION",
        help="age of a run's newest resource, e.g. 90m, 3h, 2d (default 3h)",
    )
    p.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    p.add_argument(
        "--force",
        action="store_true",
        # (The help needs no bootstrap: the figure is checked against the rule's
        # in tests/unit/test_janitor_cli.py.)
        help="go below the minimum age (150m) and ignore a cloud whose computes all report "
        "down: only for tests on a cloud of their own",
    )
    p.add_argument(
        "--label-pattern",
        # Empty: the janitor's default, every shard label (shard_labels' rule;
        # the parser imports nothing outside the standard library).
        default="",
        metavar="REGEX",
        help="only the labels that match (default: every shard label)",
    )
    p.add_argument("--cloud", help="a cloud of clouds.yaml instead of the embedded cloud")
    p.add_argument("--secret-file", help="YAML with the rest of the credentials for --cloud")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_janitor)

    p = sub.add_parser(
        "bench",
        help="measure a shard run against from-scratch deployments and the floor",
        description="Runs the variants --repeat times: from-scratch-fresh (a cloud of its own "
        "from nothing, with a new services' virtualenv from the package cache, as on a fresh CI "
        "node), from-scratch-preinstalled (the same, its packages pre-installed), shard "
        "(./shard run shard-nova-compute) and floor (plain openstacksdk: the build of the "
        "change, then the same cycle); then shard jobs at once. Prints a table of medians "
        "(with the Ansible tasks and module processes of each run) and the ratios of shard "
        "to each of the others, and writes it all as JSON.",
    )
    p.add_argument("--repeat", type=int, default=3, help="runs of each variant (default 3)")
    p.add_argument(
        "--scaling",
        default="1,2,4,8",
        metavar="N,N,...",
        help="numbers of shard jobs to run at once (default 1,2,4,8; 'none' for none)",
    )
    p.add_argument(
        "--only",
        metavar="VARIANT,...",
        help="the variants to run (default from-scratch-fresh,from-scratch-preinstalled,"
        "shard,floor); also shard-glance-api, shard-nova-compute-upgrade and shard-tempest "
        "(shard-nova-compute-tempest), the other jobs "
        "measured the same way, and from-scratch-tempest (tempest's selection on a cloud "
        "built from nothing), not run by default as they take minutes more per run",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the results as JSON (default: ~/.shard-jobs/bench/<time>/bench.json)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON instead of the table"
    )
    p.add_argument(
        "--split",
        action="store_true",
        help="after the variants, one more ./shard run shard-nova-compute (not in the medians) "
        "with its process tree sampled every 25 ms through psutil: where its harness CPU goes "
        "(ansible-playbook, its workers, module processes on the node's and on the OpenStack "
        "client's python, the build, ./shard run itself, the code under test, other), "
        "as a table and in the JSON",
    )
    p.set_defaults(func=_bench)

    p = sub.add_parser("docs", help="build the documentation site (Sphinx, zuul-sphinx)")
    p.add_argument("--out", help="where to write the HTML (default docs/_build/html)")
    p.set_defaults(func=_docs)

    p = sub.add_parser(
        "test",
        help="run the test suite, or only the named tiers",
        description="Runs the named tiers (default: all), cheapest first, with pytest.",
        epilog=testing.describe_tiers(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("tiers", nargs="*", metavar="TIER", help="one of: " + " ".join(testing.TIERS))
    p.add_argument("--pytest-args", default="", help="extra pytest arguments")
    p.set_defaults(func=_test)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (./shard run --list | head): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
