"""What the embedded cloud runs from a source tree instead of a release: the one home of the rules.

A cloud that follows a branch runs a project built from a commit of a git
repository (`./shard cloud up --source openstack/nova=PATH[@REF]`) and moves
forward in place (`./shard cloud upgrade --to openstack/nova=[PATH@]REF`). The
cloud's state directory records what it runs (sources.json), so that a later
`cloud up` keeps running it and never silently goes back to the release; the
role installs it (embedded_cloud_sources) and hands out the commit (the
handout's `commits`, which the migration guard compares with).
"""

import fcntl
import json
import shutil
from pathlib import Path

from shard_jobs import paths, sources
from shard_jobs.rules import migrations
from shard_jobs.settings import RunError

RECORD = "sources.json"
# Projects the embedded cloud can build from source, by their Python
# distribution: those a shard job tests (the guard compares a change with the
# commit the cloud runs). Each needs the role to run its services from the
# commit's virtualenv and to migrate its database in an operator's order.
PROJECTS = {"openstack/nova": "nova", "openstack/glance": "glance"}


def _git(repo: Path, *args: str) -> str:
    """git in the repository, as ./shard run reads a --src tree (sources._source_git: a
    tree of another owner is trusted for this command only); one line on failure."""
    return sources._source_git(list(args), repo, cwd=repo).stdout.decode().strip()


def parse(item: str, option: str) -> tuple[str, str, str]:
    """PROJECT=[PATH@]REF or PROJECT=PATH → (distribution, path or "", ref or "").

    The last '@' separates the ref; with --source a bare path means its HEAD,
    with --to a bare word is a ref of the repository the cloud already follows."""
    project, sep, rest = item.partition("=")
    if not sep or not rest:
        raise RunError(
            f"bad {option} {item!r}: expected PROJECT=PATH[@REF], e.g. openstack/nova=~/nova@master"
        )
    if project not in PROJECTS:
        raise RunError(
            f"bad {option} {item!r}: the embedded cloud builds only {', '.join(sorted(PROJECTS))} "
            "from source"
        )
    path, at, ref = rest.rpartition("@")
    if not at:
        path, ref = (rest, "") if option == "--source" else ("", rest)
    if not ref and option == "--to":
        raise RunError(f"bad {option} {item!r}: no ref to upgrade to")
    return PROJECTS[project], path, ref


def resolve(path: str, ref: str) -> dict:
    """{repo, commit, version} of REF (HEAD when empty) in the git repository at path.

    version is the newest release tag the commit descends from: the release the
    cloud is past (the handout's versions)."""
    repo = Path(path).expanduser().resolve()
    if not (repo / ".git").exists() and not (repo / "HEAD").is_file():
        raise RunError(f"not a git repository: {repo}")
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref or 'HEAD'}^{{commit}}")
    except RunError:
        raise RunError(f"{repo} has no commit {ref or 'HEAD'!r}") from None
    try:
        # Release tags only (pbr's are versions: 34.0.0, 2026.2.0): not a test's or a
        # user's own tag.
        version = _git(repo, "describe", "--tags", "--abbrev=0", "--match", "[0-9]*", commit)
    except RunError:
        raise RunError(
            f"no release tag below {ref or 'HEAD'} in {repo}: which release it follows is unknown"
        ) from None
    return {"repo": str(repo), "commit": commit, "version": version}


def followed_source(source: dict, package: str) -> Path:
    """The commit a cloud follows as a source of a run (the release's counterpart for
    `./shard run` without --src): a cached clone of its repository with HEAD there, made
    once under a lock as sources.release_source makes a release's."""
    dest = paths.HOME / "cache" / "sources" / f"{package}-{source['commit'][:12]}"
    if (dest / ".git").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / ".git").exists():
            return dest
        tmp = dest.parent / f".{dest.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _git(Path(source["repo"]), "clone", "-q", "--no-checkout", source["repo"], str(tmp))
            _git(tmp, "checkout", "-q", "-B", "master", source["commit"])
            tmp.rename(dest)
        except (RunError, OSError) as exc:
            where = f"{package} {source['commit'][:12]} from {source['repo']}"
            raise RunError(f"cannot take {where}: {exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def load(cloud_dir: Path) -> dict:
    """What the cloud runs from source, by distribution ({} for releases only)."""
    path = cloud_dir / RECORD
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RunError(f"{path} is not JSON ({exc}): destroy the cloud to start again") from None
    if not _well_formed(found):
        raise RunError(
            f"{path} is not a record of sources ({{distribution: {{repo, commit, version}}}}):"
            " destroy the cloud to start again"
        )
    return found


def _well_formed(found) -> bool:
    return isinstance(found, dict) and all(
        dist in PROJECTS.values()
        and isinstance(entry, dict)
        and all(isinstance(entry.get(k), str) for k in ("repo", "commit", "version"))
        # A full commit id (the guard's rule), as git rev-parse writes it.
        and migrations.is_commit(entry["commit"])
        and entry["commit"] == entry["commit"].lower()
        for dist, entry in found.items()
    )


def save(cloud_dir: Path, sources: dict) -> None:
    cloud_dir.mkdir(parents=True, exist_ok=True)
    tmp = cloud_dir / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")
    tmp.replace(cloud_dir / RECORD)


def forward(dist: str, current: dict | None, release: str, new: dict) -> None:
    """Refuse a move that is not forward: the new commit must descend from the one the
    cloud runs (current), or from the tag of the release it runs (release)."""
    base = current["commit"] if current else release
    what = f"{dist} {current['commit'][:12]}" if current else f"the release {dist} {release}"
    try:
        _git(Path(new["repo"]), "merge-base", "--is-ancestor", base, new["commit"])
    except RunError:
        raise RunError(
            f"{dist} {new['commit'][:12]} does not descend from {what}, which the cloud runs: "
            "a cloud is upgraded forward only (destroy it to start again)"
        ) from None


def up_sources(cloud_dir: Path, items: list[str], exists: bool) -> dict:
    """The sources a `cloud up` builds: the recorded ones, or --source's for a new cloud.

    A cloud that exists is moved only by `cloud upgrade` (forward, in place)."""
    recorded = load(cloud_dir)
    wanted = {}
    for item in items:
        dist, path, ref = parse(item, "--source")
        wanted[dist] = resolve(path, ref)
    if not items or wanted == recorded:
        return recorded
    if exists:
        runs = (
            ", ".join(f"{d} {s['commit'][:12]}" for d, s in sorted(recorded.items())) or "releases"
        )
        raise RunError(
            f"this cloud runs {runs}: 'cloud upgrade --to PROJECT=[PATH@]REF' moves it forward, "
            "'cloud destroy' starts again"
        )
    save(cloud_dir, wanted)
    return wanted


def upgrade_sources(cloud_dir: Path, items: list[str], releases: dict) -> dict:
    """The sources after `cloud upgrade --to ...`, checked forward. Not recorded: the
    caller records them once the cloud runs them (a failed upgrade leaves the record,
    and `cloud up` brings the services back to it; `cloud upgrade` again resumes).

    releases: the release each distribution runs when not from source."""
    found = load(cloud_dir)
    for item in items:
        dist, path, ref = parse(item, "--to")
        current = found.get(dist)
        if not path:
            if not current:
                raise RunError(
                    f"the cloud runs the release of {dist}: say which repository, "
                    f"--to {item.partition('=')[0]}=PATH@REF"
                )
            path = current["repo"]
        new = resolve(path, ref)
        forward(dist, current, releases.get(dist, ""), new)
        found[dist] = new
    return found
