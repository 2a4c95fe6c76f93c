"""The sources of a job, as Zuul's merger prepares them: a git repository per
project under the run's work/src, each with the change under test checked out.

Here the change is a local tree's state (--src PROJECT=PATH: its commits and
its uncommitted changes), or, for the project a profile builds, the project's
source release at the version constraints.txt pins.
"""

import fcntl
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from shard_jobs import git_identity, paths
from shard_jobs.settings import RunError

CANONICAL_HOST = "opendev.org"


def _git(args, cwd):
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_identity.environment(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def pinned_version(package: str) -> str:
    """The version of PACKAGE that constraints.txt pins."""
    for line in paths.CONSTRAINTS.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package.lower():
            return version.strip()
    raise RunError(f"{package} has no pinned version in {paths.CONSTRAINTS}")


def local_trees(src_items) -> dict[str, Path]:
    """--src PROJECT=PATH items: the source tree of each project named."""
    trees = {}
    for item in src_items:
        name, sep, path = item.partition("=")
        if not sep or "/" not in name:
            raise RunError(f"bad --src {item!r}: expected PROJECT=PATH, e.g. openstack/nova=~/nova")
        trees[name] = Path(path)
        # Before anything is written: a missing tree leaves nothing behind.
        if not trees[name].expanduser().is_dir():
            raise RunError(f"missing source tree: {trees[name].expanduser()} is not a directory")
    return trees


def release_source(package: str, version: str) -> Path:
    """The source release of a package (sdist from the package index), as a tagged git repo."""
    dest = paths.HOME / "cache" / "sources" / f"{package}-{version}"
    if _packed(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Runs started together (concurrent jobs) fetch it once, one after the other.
    with open(dest.parent / f".{package}-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / ".git").exists():
            _fetch_release(package, version, dest)
        if not _packed(dest):
            # A cache made before releases were packed: packed once, here.
            _pack(dest)
        return dest


def _packed(repo: Path) -> bool:
    """Whether the cached release's objects are in a pack: every run clones it
    (--no-hardlinks), and a copy of thousands of loose objects (one per file
    of the release) cost seconds of system CPU, one pack file a fraction.
    Packed means done: an index of a finished pack, and no loose object left
    (prune-packed removes their directories last), so that a run never
    clones it while another run packs it (that one holds the lock)."""
    objects = repo / ".git" / "objects"
    return any((objects / "pack").glob("pack-*.idx")) and not any(objects.glob("[0-9a-f][0-9a-f]"))


def _pack(repo: Path):
    _git(["repack", "-a", "-d", "-q"], repo)
    _git(["prune-packed", "-q"], repo)


def _fetch_release(package: str, version: str, dest: Path) -> Path:
    download = paths.HOME / "cache" / "sdists"
    download.mkdir(parents=True, exist_ok=True)
    print(f"run: fetching the {package} {version} source release (the code under test)", flush=True)
    start = time.monotonic()
    # pip's output stays off the terminal (a machine's pip configuration may
    # warn once per package); its error line is the failure's one line.
    fetched = subprocess.run(
        [
            paths.bin_path("python"),
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(download),
            f"{package}=={version}",
        ],
        capture_output=True,
        text=True,
    )
    if fetched.returncode != 0:
        errors = [line for line in fetched.stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else f"pip download exited {fetched.returncode}"
        raise RunError(f"fetching the {package} {version} source release failed: {reason}")
    sdist = next(download.glob(f"{package}-{version}.tar.gz"))
    tmp = dest.with_suffix(".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
    (tmp / f"{package}-{version}").rename(tmp / "src")
    src = tmp / "src"
    _git(["init", "-q", "-b", "master"], src)
    _git(["add", "-A"], src)
    _git(["commit", "-q", "-m", f"{package} {version} source release"], src)
    _git(["tag", version], src)
    _pack(src)
    src.rename(dest)
    tmp.rmdir()
    print(f"run: {package} {version} source release fetched in {time.monotonic() - start:.0f}s")
    return dest


def source_head(tree: Path) -> str:
    """The commit a --src tree's HEAD is at; a RunError of one line when it has none."""
    tree = tree.expanduser()
    return _source_git(["rev-parse", "HEAD"], tree, cwd=tree).stdout.decode().strip()


def _source_git(args: list[str], source: Path, **kwargs) -> subprocess.CompletedProcess:
    """git on the user's tree, as Zuul's merger reads a repository it did not create.

    The tree may belong to another user (a container's bind mount, a CI
    workspace): git refuses such a repository ("dubious ownership") unless it
    is a safe.directory of the protected (global or system) configuration.
    Trust it for this one command only: a global configuration of our own
    that includes the user's and adds the tree (`-c` would not reach the
    upload-pack a local clone starts: git clears it from that environment).
    The user's git configuration is not changed. A failure is one line: git's.
    """
    with tempfile.NamedTemporaryFile("w", prefix="shard-git-", suffix=".cfg") as config:
        user_config = os.environ.get("GIT_CONFIG_GLOBAL") or Path.home() / ".gitconfig"
        config.write(f'[include]\n\tpath = "{user_config}"\n[safe]\n')
        # The work tree for commands run in it; its .git for upload-pack (clone).
        config.write(f'\tdirectory = "{source}"\n\tdirectory = "{source / ".git"}"\n')
        config.flush()
        env = dict(os.environ, GIT_CONFIG_GLOBAL=config.name)
        try:
            return subprocess.run(
                ["git", *args], check=True, capture_output=True, env=env, **kwargs
            )
        except subprocess.CalledProcessError as exc:
            err = exc.stderr.decode(errors="replace")
            lines = [line.strip() for line in err.splitlines() if line.strip()]
            reason = next((x for x in lines if x.startswith(("fatal:", "error:"))), None)
            reason = reason or (lines[0] if lines else f"exit status {exc.returncode}")
            raise RunError(
                f"cannot read the source tree {source} with git {args[0]}: {reason}"
            ) from None


def prepare_repo(source: Path, dest: Path):
    """Like Zuul's merger: a git repo with the change (here: the tree's state) checked out."""
    source = source.expanduser().resolve()
    if not source.is_dir():
        raise RunError(f"missing source tree: {source} is not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if (dest / ".git").exists():
        return  # prepared by an earlier attempt of the same build (--cleanup)
    if (source / ".git").exists():
        _source_git(["clone", "-q", "--no-hardlinks", str(source), str(dest)], source)
        # Uncommitted changes of the tree are part of what is tested: changes to
        # tracked files, and new files not yet added (not the ignored ones). The
        # source's own index is left alone.
        diff = _source_git(["diff", "HEAD", "--binary"], source, cwd=source).stdout
        if diff:
            subprocess.run(
                ["git", "apply", "--index"], cwd=dest, input=diff, check=True, capture_output=True
            )
        untracked = _source_git(
            ["ls-files", "--others", "--exclude-standard", "-z"], source, cwd=source
        ).stdout.split(b"\0")
        for rel in filter(None, (os.fsdecode(name) for name in untracked)):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, target, follow_symlinks=False)
        if _git(["status", "--porcelain"], dest).strip():
            _git(["add", "-A"], dest)
            _git(["commit", "-q", "-m", "Local changes under test"], dest)
    else:
        # Copied as this user (not cp -a): a copy still owned by the tree's
        # owner would be a "dubious" repository to the git commands below.
        shutil.copytree(source, dest, symlinks=True)
        _git(["init", "-q", "-b", "master"], dest)
        _git(["add", "-A"], dest)
        _git(["commit", "-q", "-m", "Source tree under test"], dest)


def project_entry(name: str, src_dir: Path, checkout: str = "master") -> dict:
    commit = _git(["rev-parse", "HEAD"], src_dir).strip()
    return {
        "name": name,
        "short_name": name.rsplit("/", 1)[-1],
        "canonical_hostname": CANONICAL_HOST,
        "canonical_name": f"{CANONICAL_HOST}/{name}",
        "src_dir": str(src_dir),
        "required": True,
        "checkout": checkout,
        "checkout_description": "local run",
        "commit": commit,
    }
