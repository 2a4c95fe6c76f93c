"""The job's credentials: the value of its shard_cloud secret, as Zuul would
decrypt it. From the embedded cloud's handout by default; from a cloud of
clouds.yaml (--cloud, with --secret-file for what clouds.yaml does not hold,
the transport_url), or from a whole secret file (--secret-file alone)."""

from pathlib import Path

import yaml

from shard_jobs import cloud
from shard_jobs.settings import RunError, RunSettings

# What a clouds.yaml entry contributes to the secret's cloud: nothing else of it.
# auth_type says how auth is read (a password, an application credential).
CLOUD_KEYS = ("auth_type", "auth", "region_name", "interface", "identity_api_version")


def _read(secret_file) -> dict | None:
    try:
        return yaml.safe_load(Path(secret_file).read_text())
    except OSError as exc:
        raise RunError(f"cannot read the secret file {secret_file}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # Only where: YAML's own message quotes the line, which may hold a password.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RunError(f"the secret file {secret_file} is not valid YAML{where}") from None


def target_secret(settings: RunSettings) -> dict:
    """The value of the job's shard_cloud secret."""
    if settings.cloud:
        import openstack.config

        try:
            region = openstack.config.OpenStackConfig().get_one(cloud=settings.cloud)
        except Exception as exc:
            raise RunError(f"unknown cloud {settings.cloud!r} in clouds.yaml ({exc})") from None
        entry = dict(region.config)
        secret = {
            "cloud_name": settings.cloud,
            "cloud": {k: entry[k] for k in CLOUD_KEYS if k in entry},
        }
        if settings.secret_file:
            secret.update(_read(settings.secret_file) or {})
        if not secret.get("transport_url"):
            raise RunError(f"--cloud {settings.cloud} needs --secret-file with its transport_url")
        return secret
    if settings.secret_file:
        return _read(settings.secret_file)
    if cloud.up() != 0:
        raise RunError("the embedded cloud did not come up (see above)")
    return _read(cloud.load_manifest()["secret_file"])
