"""./shard cloud up|status|down|destroy, on an isolated cloud (see cloud_helpers.py).

The tests run in this order and share the cloud: bring-up from nothing, a
second `up` with nothing to do, repair of a killed service, a fake-driver
nova-compute that joins and boots a server, bad input that must change nothing,
down and up again, destroy.
"""

import configparser
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cloud_helpers import (
    DATABASES,
    DB_PREFIX,
    DB_USER,
    NAME,
    PORTS,
    RABBIT_USER,
    VHOST,
    cloud_databases,
    group_members,
    mysql,
    rabbitmqctl,
    stop_process,
    wait_for,
)
from packaging.requirements import Requirement

from shard_jobs import paths, rules

SERVICES = ["keystone", "placement", "glance", "neutron", "nova-api", "nova-conductor",
            "nova-scheduler", "nova-compute"]  # fmt: skip


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def one_line(result) -> str:
    """The single line naming the problem that a failed command printed on stderr."""
    lines = result.stderr_lines
    assert result.rc != 0, result
    assert len(lines) == 1, result
    return lines[0]


def assert_untouched(iso, before_files, before_pids):
    """Databases, state directory and running services as they were."""
    assert cloud_databases() == sorted(DB_PREFIX + name for name in DATABASES)
    assert iso.snapshot() == before_files
    assert {name: s["pid"] for name, s in iso.services().items()} == before_pids


# ---------------------------------------------------------------- bring-up


def test_up_from_nothing(iso):
    assert cloud_databases() == []
    assert not iso.dir.exists()

    result = iso.shard("up")
    assert result.rc == 0, result
    iso.timings["from nothing"] = result.seconds

    rc, status = iso.status()
    assert rc == 0 and status["healthy"], status
    assert status["cloud"] == NAME
    assert sorted(s["name"] for s in status["services"] if s["kind"] == "service") == sorted(
        SERVICES
    )
    assert cloud_databases() == sorted(DB_PREFIX + name for name in DATABASES)
    assert VHOST in rabbitmqctl("list_vhosts")
    # Every API listens on loopback, on the isolated ports.
    for service in status["services"]:
        if service["kind"] == "service" and service["endpoint"] != "-":
            assert service["endpoint"].startswith("http://127.0.0.1:1")


def test_every_file_the_role_writes_is_well_formed(iso):
    """What `up` wrote parses as its consumers will read it (pip, oslo.config,
    openstacksdk, the CLI), and the services' virtualenv is the one it made."""
    # The constraints pip installed the services with: the repository's, byte
    # for byte; every line a requirement, the last one ended by a real newline
    # (Ansible's templating once turned '\\n' into a backslash and an 'n').
    written = (iso.dir / "constraints.txt").read_text()
    assert written == (paths.REPO / "constraints.txt").read_text()
    assert written.endswith("\n") and not written.endswith("\\n\n")
    for line in written.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            Requirement(line)  # raises on a line pip would refuse
    for name in ("clouds.yaml", "secrets.yaml", "shard-cloud-secret.yaml"):
        path = iso.dir / name
        assert isinstance(yaml.safe_load(path.read_text()), dict), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert isinstance(json.loads((iso.dir / "cloud.json").read_text()), dict)
    configs = sorted((iso.dir / "etc").rglob("*.conf")) + sorted((iso.dir / "etc").rglob("*.ini"))
    assert len(configs) >= 7, configs
    for path in configs:
        parser = configparser.RawConfigParser(strict=False)
        parser.read_string(path.read_text(), source=str(path))
        assert parser.sections(), path
    for path in (iso.dir / "etc").rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    # The virtualenv this tier's first `up` created (not a leftover of an earlier
    # run): it records the package set it installed, at the pinned versions.
    assert iso.manifest["venv"] == str(iso.venv)
    assert list(iso.venv.glob(".installed-*")), sorted(p.name for p in iso.venv.iterdir())
    freeze = subprocess.run(
        [str(iso.venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    pins = {
        name: version
        for name, _, version in (
            line.partition("==") for line in written.lower().splitlines() if "==" in line
        )
    }
    assert f"nova=={pins['nova']}" in freeze.splitlines()
    assert f"keystone=={pins['keystone']}" in freeze.splitlines()


def test_every_api_answers_the_ci_user(iso):
    conn = iso.connect()
    assert conn.auth["username"] == "shard-ci"
    assert conn.auth_token
    # placement
    response = conn.placement.get("/resource_providers")
    assert response.status_code == 200, response.text
    # glance: the tiny image
    images = [i for i in conn.image.images() if i.name == "shard-tiny"]
    assert [i.status for i in images] == ["active"]
    assert images[0].visibility == "public"
    # neutron
    assert isinstance(list(conn.network.networks()), list)
    assert isinstance(list(conn.network.ports()), list)
    # nova
    assert isinstance(list(conn.compute.flavors()), list)
    binaries = {(s.binary, s.state, s.status) for s in conn.compute.services()}
    assert ("nova-conductor", "up", "enabled") in binaries
    assert ("nova-scheduler", "up", "enabled") in binaries
    # The ordinary compute, never a shard, where tenants' servers go (it
    # reports in within seconds of its start).
    wait_for(
        lambda: (
            ("nova-compute", "up", "enabled")
            in {(s.binary, s.state, s.status) for s in conn.compute.services()}
        ),
        60,
        "the ordinary compute to report up",
    )


def as_glance_shard(secret: dict, query: str) -> subprocess.CompletedProcess:
    """A query with the database URL the cloud hands to glance shards (password through
    the environment, never on a command line)."""
    database_url = secret["glance"]["database_connection"]
    (url,) = rules.secrets.url_hosts(database_url)  # the password decoded, as SQLAlchemy does
    database = urlsplit(database_url).path.lstrip("/")
    return subprocess.run(
        ["mysql", "-N", "-B", "-h", url["host"], "-P", str(url["port"] or 3306),
         "-u", url["user"], database, "-e", query],
        env=dict(os.environ, MYSQL_PWD=url["password"]),
        capture_output=True,
        text=True,
    )  # fmt: skip


def test_glance_shards_get_a_data_only_database_account(iso, secret):
    """The handout's glance database URL reads and writes rows, never the schema (a
    change under test cannot run DDL whatever its migrations say), and reaches no
    other database."""
    assert f"{DB_USER}:" not in secret["glance"]["database_connection"]
    try:
        created = as_glance_shard(secret, "CREATE TABLE shard_probe (id INT)")
        assert created.returncode != 0 and "command denied" in created.stderr, created
        indexed = as_glance_shard(secret, "CREATE INDEX shard_probe ON images (name)")
        assert indexed.returncode != 0 and "command denied" in indexed.stderr, indexed
        elsewhere = as_glance_shard(secret, f"SELECT COUNT(*) FROM `{DB_PREFIX}nova`.instances")
        assert elsewhere.returncode != 0 and "denied" in elsewhere.stderr, elsewhere
    finally:
        mysql(f"DROP TABLE IF EXISTS `{DB_PREFIX}glance`.shard_probe")
    selected = as_glance_shard(secret, "SELECT name FROM images WHERE deleted = 0")
    assert selected.returncode == 0, selected
    assert "shard-tiny" in selected.stdout.split(), selected
    updated = as_glance_shard(secret, "UPDATE images SET updated_at = updated_at WHERE 1 = 0")
    assert updated.returncode == 0, updated


def test_second_up_changes_nothing_and_is_fast(iso):
    result = iso.shard("up")
    assert result.rc == 0, result
    assert "nothing to change" in result.stdout, result
    iso.timings["no change"] = result.seconds
    first = iso.timings["from nothing"]
    assert result.seconds < first / 10, (
        f"second up took {result.seconds:.1f}s, the bring-up {first:.1f}s"
    )


# ---------------------------------------------------------------- repair


@pytest.mark.parametrize("victim", ["glance", "nova-conductor"])
def test_a_killed_service_is_restarted(iso, victim):
    pid = iso.services()[victim]["pid"]
    os.kill(pid, signal.SIGKILL)

    def shown_down():
        rc, status = iso.status()
        state = {s["name"]: s["state"] for s in status["services"]}
        return rc != 0 and state[victim] == "down" and not status["healthy"]

    wait_for(shown_down, 10, f"status to show {victim} down")
    result = iso.shard("status")
    assert result.rc != 0 and victim in result.stdout

    result = iso.shard("up")
    assert result.rc == 0, result
    assert f"restarted {victim}" in result.stdout, result
    # Only the dead one, and without running the playbook.
    assert result.stdout.count("restarted ") == 1, result
    assert "cloud up: state" not in result.stdout, result
    iso.timings[f"repair of {victim}"] = result.seconds

    rc, status = iso.status()
    assert rc == 0 and status["healthy"], status
    new_pid = {s["name"]: s["pid"] for s in status["services"]}[victim]
    assert new_pid != pid
    # The killed leader's workers did not survive it.
    assert group_members({pid}) == []


# ---------------------------------------------------------------- a compute joins


def compute_config(secret: dict, host: str, state: Path) -> str:
    """nova.conf of a fake-driver compute, from the cloud's handout file only."""
    auth = secret["cloud"]["auth"]
    section = "\n".join(
        [
            "auth_type = password",
            f"auth_url = {auth['auth_url']}",
            f"username = {auth['username']}",
            f"password = {auth['password']}",
            f"project_name = {auth['project_name']}",
            f"user_domain_name = {auth['user_domain_name']}",
            f"project_domain_name = {auth['project_domain_name']}",
            f"region_name = {secret['cloud']['region_name']}",
        ]
    )
    return (
        "[DEFAULT]\n"
        f"host = {host}\n"
        "compute_driver = fake.FakeDriverWithoutFakeNodes\n"
        f"transport_url = {secret['transport_url']}\n"
        f"state_path = {state}\n"
        "my_ip = 127.0.0.1\n"
        "use_stderr = true\n"
        "[oslo_concurrency]\n"
        f"lock_path = {state}/locks\n"
        "[vnc]\nenabled = false\n"
        f"[placement]\n{section}\n"
        f"[neutron]\n{section}\n"
        f"[service_user]\nsend_service_user_token = true\n{section}\n"
    )


def test_a_fake_compute_joins_and_boots_a_server(iso, secret, tmp_path):
    host = f"shard-cloud-test-{secrets.token_hex(4)}"
    state = tmp_path / "compute"
    state.mkdir()
    conf = tmp_path / "nova-compute.conf"
    conf.write_text(compute_config(secret, host, state))
    conf.chmod(0o600)
    log = (tmp_path / "nova-compute.log").open("w")
    venv = Path(iso.status()[1]["venv"])
    compute = subprocess.Popen(
        [str(venv / "bin" / "nova-compute"), "--config-file", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    conn = iso.connect()
    flavor = server = None
    try:

        def service():
            found = [s for s in conn.compute.services(binary="nova-compute") if s.host == host]
            return found[0] if found and found[0].state == "up" else None

        wait_for(service, 120, f"nova-compute on {host} to report up")
        provider = wait_for(
            lambda: next(iter(conn.placement.resource_providers(name=host)), None),
            60,
            "its resource provider",
        )

        # The scheduler's periodic host discovery maps it to the cell (every 2 s).
        wait_for(
            lambda: mysql(
                f"SELECT host FROM {DB_PREFIX}nova_api.host_mappings WHERE host = '{host}'"
            ),
            60,
            f"{host} to be mapped to a cell",
        )

        flavor = conn.compute.create_flavor(name=host, ram=64, vcpus=1, disk=0)
        image = conn.image.find_image("shard-tiny", ignore_missing=False)
        # On this compute, not the cloud's ordinary one: a requested host.
        server = conn.compute.create_server(
            name=host,
            flavor_id=flavor.id,
            image_id=image.id,
            networks="none",
            host=host,
        )
        try:
            server = conn.compute.wait_for_server(server, wait=120)
        except Exception:
            fault = conn.compute.get_server(server.id).fault
            pytest.fail(f"the server did not become ACTIVE: {fault}", pytrace=False)
        shown = conn.compute.get_server(server.id)
        assert shown.status == "ACTIVE"
        assert shown.compute_host == host

        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
        server = None
    finally:
        if server is not None:
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, wait=120)
        stop_process(compute)
        log.close()
        if flavor is not None:
            conn.compute.delete_flavor(flavor)
        # The compute service record goes, and its resource provider with it.
        for record in conn.compute.services(binary="nova-compute"):
            if record.host == host:
                conn.compute.delete_service(record)
    assert [s for s in conn.compute.services(binary="nova-compute") if s.host == host] == []
    gone = conn.placement.get(f"/resource_providers/{provider.id}", raise_exc=False)
    assert gone.status_code == 404, gone.text


# ---------------------------------------------------------------- bad input


def test_a_port_taken_by_another_program(iso):
    result = iso.shard("down")
    assert result.rc == 0, result
    before = iso.snapshot()
    squatter = subprocess.Popen(
        ["python3", "-m", "http.server", str(PORTS["keystone"]), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: listening(PORTS["keystone"]), 10, "the squatter to listen")
        # Restarting the stopped processes finds it first ...
        result = iso.shard("up")
        line = one_line(result)
        assert f"port {PORTS['keystone']}" in line and "already in use" in line, line
        assert str(squatter.pid) in line, line
        assert_untouched(iso, before, {})
        # ... and so does the playbook's preflight, when the inputs changed.
        (iso.dir / "converged").unlink()
        result = iso.shard("up")
        line = one_line(result)
        assert f"port {PORTS['keystone']}" in line and "already in use" in line, line
        assert_untouched(iso, before, {})
    finally:
        stop_process(squatter)
    result = iso.shard("up")
    assert result.rc == 0, result
    assert iso.status()[0] == 0


def test_mariadb_unreachable(iso):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    before_files = iso.snapshot()
    before_pids = {name: s["pid"] for name, s in iso.services().items()}
    result = iso.shard(
        "up",
        env={
            "SHARD_CLOUD_VAR_DB_PORT": str(closed),
            "SHARD_CLOUD_VAR_MANAGE_DB_SERVER": "false",
        },
    )
    line = one_line(result)
    assert f"MariaDB at 127.0.0.1:{closed} is unreachable" in line, line
    assert_untouched(iso, before_files, before_pids)
    assert iso.status()[0] == 0
    result = iso.shard("up")
    assert result.rc == 0, result


def test_a_stored_database_password_that_no_longer_works(iso):
    import yaml

    stored = yaml.safe_load((iso.dir / "secrets.yaml").read_text())["db"]
    before_files = iso.snapshot()
    before_pids = {name: s["pid"] for name, s in iso.services().items()}
    mysql(f"ALTER USER '{DB_USER}'@'%' IDENTIFIED BY 'not-{secrets.token_hex(8)}'")
    try:
        result = iso.shard("up")
        line = one_line(result)
        assert "no longer works" in line and DB_USER in line, line
        assert_untouched(iso, before_files, before_pids)
    finally:
        mysql(f"ALTER USER '{DB_USER}'@'%' IDENTIFIED BY '{stored}'")
    result = iso.shard("up")
    assert result.rc == 0, result


def test_a_new_state_directory_over_an_earlier_clouds_databases(iso):
    """A state directory moved aside takes the cloud's passwords with it, and its
    databases cannot be used again without them (keystone, nova's cell mappings): up
    with a new state directory refuses in one line, and the databases and their user
    stay as they were (the moved directory, put back, brings the same cloud up)."""
    assert iso.shard("down").rc == 0
    kept = iso.dir.with_name(iso.dir.name + "-kept")
    iso.dir.rename(kept)
    try:
        result = iso.shard("up")
        line = one_line(result)
        assert "an earlier embedded cloud's" in line and "'./shard cloud destroy'" in line, line
        assert f"{DB_PREFIX}nova_api" in line, line
        assert cloud_databases() == sorted(DB_PREFIX + name for name in DATABASES)
        assert not any(listening(port) for port in PORTS.values())
    finally:
        shutil.rmtree(iso.dir, ignore_errors=True)
        kept.rename(iso.dir)
    # The user's password was not changed: the stored one still works.
    result = iso.shard("up")
    assert result.rc == 0, result
    assert iso.status()[0] == 0


# ---------------------------------------------------------------- down, up, destroy


def test_down_stops_everything_and_up_brings_back_the_same_cloud(iso):
    image = iso.connect().image.find_image("shard-tiny", ignore_missing=False)
    pids = {s["pid"] for s in iso.services().values()}
    assert len(pids) == len(SERVICES)

    result = iso.shard("down")
    assert result.rc == 0, result
    rc, status = iso.status()
    assert rc != 0
    assert {s["state"] for s in status["services"] if s["kind"] == "service"} == {"down"}
    # No process of the cloud is left, gunicorn and nova workers included, and no port.
    assert group_members(pids) == []
    assert [name for name, port in PORTS.items() if listening(port)] == []
    # The data is kept.
    assert cloud_databases() == sorted(DB_PREFIX + name for name in DATABASES)
    assert (iso.dir / "secrets.yaml").exists()

    result = iso.shard("up")
    assert result.rc == 0, result
    iso.timings["up after down"] = result.seconds
    assert result.seconds < iso.timings["from nothing"] / 2, result
    assert iso.status()[0] == 0
    assert iso.connect().image.find_image("shard-tiny", ignore_missing=False).id == image.id


def test_databases_dropped_behind_its_back_are_made_again(iso):
    """MariaDB lost the cloud's databases and user (a server reset, another tool's
    cleanup) while the state directory still records the migrations: up creates them
    again and migrates them, instead of starting services on empty databases."""
    assert iso.shard("down").rc == 0
    for name in DATABASES:
        mysql(f"DROP DATABASE IF EXISTS `{DB_PREFIX}{name}`")
    mysql(f"DROP USER IF EXISTS '{DB_USER}'@'%'")
    assert any(p.name.startswith("dbsync-") for p in (iso.dir / "lib" / "stamps").iterdir())

    result = iso.shard("up")

    assert result.rc == 0, result
    # Seen before anything is restarted: restarting services would not help.
    assert "cloud up: MariaDB refuses the stored password; converging" in result.stdout, result
    assert "restarted" not in result.stdout, result
    assert cloud_databases() == sorted(DB_PREFIX + name for name in DATABASES)
    rc, status = iso.status()
    assert rc == 0 and status["healthy"], status
    conn = iso.connect()
    assert isinstance(list(conn.compute.flavors()), list)  # nova_api has its tables
    assert [i.status for i in conn.image.images() if i.name == "shard-tiny"] == ["active"]


def test_the_glance_shards_account_dropped_behind_its_back_is_made_again(iso, secret):
    """As a cloud made before that account existed: the next up creates it."""
    user = iso.manifest["database"]["glance_shard_user"]
    mysql(f"DROP USER IF EXISTS '{user}'@'%'")
    assert as_glance_shard(secret, "SELECT 1").returncode != 0

    result = iso.shard("up")

    assert result.rc == 0, result
    assert "refuses the glance shards' account; converging" in result.stdout, result
    assert "restarted" not in result.stdout, result
    assert as_glance_shard(secret, "SELECT COUNT(*) FROM images").returncode == 0


def test_the_handout_as_an_application_credential(iso):
    """SHARD_CLOUD_VAR_HANDOUT_AUTH=application_credential: the handout's account is an
    application credential of the CI user carrying the jobs' roles, that openstacksdk
    authenticates with; an up without it hands out the password again."""
    result = iso.shard("up", env={"SHARD_CLOUD_VAR_HANDOUT_AUTH": "application_credential"})
    assert result.rc == 0, result
    entry = yaml.safe_load(Path(iso.manifest["secret_file"]).read_text())["cloud"]
    try:
        assert entry["auth_type"] == "v3applicationcredential"
        assert sorted(entry["auth"]) == [
            "application_credential_id",
            "application_credential_secret",
            "auth_url",
        ]
        secret = entry["auth"]["application_credential_secret"]
        # secrets_found, not 'secret not in': pytest would print the secret on failure.
        output = (result.stdout + result.stderr).encode()
        assert rules.secrets.secrets_found(output, {"the credential's secret": secret}) == []
        import openstack

        conn = openstack.connect(load_yaml_config=False, load_envvars=False, **entry)
        access = conn.session.auth.get_access(conn.session)
        # (With the roles they imply: admin implies member and reader.)
        assert {"admin", "service"} <= set(access.role_names)
        assert isinstance(list(conn.compute.flavors()), list)
    finally:
        result = iso.shard("up")
    assert result.rc == 0, result
    back = yaml.safe_load(Path(iso.manifest["secret_file"]).read_text())["cloud"]
    assert "auth_type" not in back and back["auth"]["username"] == "shard-ci"


def test_destroy_removes_databases_vhost_and_state(iso):
    pids = {s["pid"] for s in iso.services().values()}
    result = iso.shard("destroy")
    assert result.rc == 0, result
    assert cloud_databases() == []
    # The services' account and the glance shards'.
    users = f"'{DB_USER}', '{DB_USER}_glance'"
    assert mysql(f"SELECT user FROM mysql.user WHERE user IN ({users})") == []
    assert VHOST not in rabbitmqctl("list_vhosts")
    assert RABBIT_USER not in [line.split()[0] for line in rabbitmqctl("list_users")[1:]]
    assert not iso.dir.exists()
    assert group_members(pids) == []
    assert [name for name, port in PORTS.items() if listening(port)] == []


def test_destroy_copes_with_a_half_written_state_directory(iso):
    """What an interrupted first `up` may leave: some databases, a user, odd files."""
    mysql(f"CREATE DATABASE {DB_PREFIX}keystone")
    mysql(f"CREATE USER '{DB_USER}'@'%' IDENTIFIED BY 'x{secrets.token_hex(8)}'")
    (iso.dir / "run").mkdir(parents=True)
    (iso.dir / "etc" / "keystone").mkdir(parents=True)
    (iso.dir / "secrets.yaml").write_text("db: abc\nrabbit: [unfinished")
    (iso.dir / "cloud.json").write_text('{"services": [')
    (iso.dir / "run" / "keystone.pid").write_text("")
    run = iso.dir / "run"
    Path(rules.processes.record_path(str(run / "keystone.pid"))).write_text('{"pid": "garbage"')
    rules.processes.write_record(str(run / "glance.pid"), {"pid": 1, "start_time": 0})
    Path(rules.processes.record_path(str(run / "placement.pid")) + ".tmp").write_text("{")

    rc, status = iso.status()
    assert rc != 0

    result = iso.shard("destroy")
    assert result.rc == 0, result
    assert cloud_databases() == []
    # The services' account and the glance shards'.
    users = f"'{DB_USER}', '{DB_USER}_glance'"
    assert mysql(f"SELECT user FROM mysql.user WHERE user IN ({users})") == []
    assert not iso.dir.exists()
    # pid 1 was never the cloud's: still there.
    assert Path("/proc/1").exists()
