"""The masked copy of the credentials (module_utils/shard_secrets.py) and its Jinja filter."""

import base64
import json
from urllib.parse import quote

import pytest
from unit_helpers import jinja

from shard_jobs import paths
from shard_jobs.rules import secrets

# A password with every character a URL or a regular expression trips on.
HARD = "p@ss:w/rd,x#1"
CREDENTIALS = {
    "cloud": {
        "auth": {
            "auth_url": "http://cloud.example:5000/v3",
            "username": "shard-ci",
            "password": HARD,
            "project_name": "shard-ci",
            "application_credential_secret": "app-" + HARD,
        },
        "region_name": "RegionOne",
    },
    "transport_url": f"rabbit://nova:{HARD}@h1.example:5672,nova:{HARD}@h2.example:5672/vhost",
    "glance": {
        "database_connection": f"mysql+pymysql://glance:{HARD}@db.example/glance",
        "stores": {
            "file": {"type": "file", "filesystem_store_datadir": "/srv/images"},
            "s3": {"type": "s3", "s3_store_access_key": "AKIA" + HARD, "s3_store_secret_key": HARD},
            "swift": {"type": "swift", "swift_store_key": "sw-" + HARD},
        },
    },
    "versions": {"nova": "34.0.0"},
}


def _forms(secret):
    return {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}


def _all_secrets():
    yield HARD
    yield "app-" + HARD
    yield "AKIA" + HARD
    yield "sw-" + HARD


def test_no_secret_is_left_in_any_form():
    text = json.dumps(secrets.masked(CREDENTIALS))
    for secret in _all_secrets():
        for form in _forms(secret):
            assert form not in text, form
    # Pieces of the password between the URL's delimiters are gone too.
    pieces = HARD.replace("@", " ").replace(":", " ").replace("/", " ").split()
    for piece in (p for p in pieces if len(p) >= 4):
        assert piece not in text, piece


def test_what_is_not_secret_stays_readable():
    masked = secrets.masked(CREDENTIALS)
    assert masked["cloud"]["auth"]["username"] == "shard-ci"
    assert masked["cloud"]["auth"]["auth_url"] == "http://cloud.example:5000/v3"
    assert masked["cloud"]["auth"]["password"] == secrets.MARKER
    assert masked["transport_url"] == "rabbit://****@h2.example:5672/vhost"
    assert masked["glance"]["database_connection"] == "mysql+pymysql://****@db.example/glance"
    assert masked["glance"]["stores"]["file"] == CREDENTIALS["glance"]["stores"]["file"]
    assert masked["glance"]["stores"]["s3"]["s3_store_secret_key"] == secrets.MARKER
    assert masked["versions"] == {"nova": "34.0.0"}
    # The credentials themselves are untouched.
    assert CREDENTIALS["cloud"]["auth"]["password"] == HARD


@pytest.mark.parametrize(
    "url",
    ["http://cloud.example:5000/v3", "rabbit://h1:5672/", "file:///srv/images", "not a url"],
)
def test_urls_without_user_information_stay(url):
    assert secrets.masked(url) == url


def test_the_filter_gives_the_same_masked_copy():
    result = jinja("credentials | shard_masked", credentials=CREDENTIALS)
    assert result["msg"] == secrets.masked(CREDENTIALS)


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"prefix:"])
def test_a_base64_copy_is_found_wherever_it_starts(prefix):
    data = base64.b64encode(prefix + HARD.encode() + b"\n...the rest of a file")
    assert secrets.secrets_found(data, {"the password": HARD}) == [
        ("the password", f"base64+{len(prefix) % 3}")
    ]
    urlsafe = base64.urlsafe_b64encode(prefix + b"\xfb\xff" + HARD.encode())
    assert secrets.secrets_found(urlsafe, {"p": b"\xfb\xff" + HARD.encode()})


@pytest.mark.parametrize(
    ("written", "form"),
    [
        (f"rabbit://nova:{quote(HARD, safe='')}@h1:5672/", "url-encoded"),
        (f"rabbit://nova:{quote(HARD, safe=',')}@h1:5672/", "userinfo-encoded"),
        (f"pass={quote(HARD, safe='').lower()}", None),
        (f"a={HARD}", "raw"),
    ],
)
def test_a_url_encoded_or_raw_copy_is_found(written, form):
    hits = secrets.secrets_found(written.encode(), {"the password": HARD})
    assert len(hits) == 1 and (form is None or hits[0][1] == form), hits


def test_the_masked_copy_holds_no_form_of_any_secret():
    data = json.dumps(secrets.masked(CREDENTIALS)).encode()
    wanted = {f"secret {i}": s for i, s in enumerate(_all_secrets())}
    assert secrets.secrets_found(data, wanted) == []
    # And the scan does see them in the unmasked credentials.
    assert len(secrets.secrets_found(json.dumps(CREDENTIALS).encode(), wanted)) == len(wanted)


# -- a password in a URL: url_quoted and url_hosts --------------------------------

# Like the embedded cloud's message-bus password (state.yaml: '@' and ':' among letters
# and digits), plus a '/' the rule must encode too (the cloud's has none: oslo.messaging
# 18.2.0 re-encodes the password for kombu and keeps '/').
CLOUD_LIKE = "VSUHc3R1@jeFcy72P:1NzxP5kX/SlsdQFAs"


def test_a_url_password_is_percent_encoded_whole():
    assert secrets.url_quoted(CLOUD_LIKE) == "VSUHc3R1%40jeFcy72P%3A1NzxP5kX%2FSlsdQFAs"
    # Every delimiter of a URL's authority is encoded; Jinja's urlencode keeps '/'.
    for char in "@:/,?#[]%":
        assert char not in secrets.url_quoted(f"a{char}b").replace("%", "", 1)
    assert secrets.url_quoted("a-b_c.d~e") == "a-b_c.d~e"


def test_the_filter_encodes_as_the_rule_does():
    result = jinja("password | shard_url_quoted", password=CLOUD_LIKE)
    assert result["msg"] == secrets.url_quoted(CLOUD_LIKE)
    # Jinja's own urlencode would end the URL's authority at the '/'.
    assert "/" in jinja("password | urlencode", password=CLOUD_LIKE)["msg"]


def test_the_embedded_cloud_role_loads_the_same_filter_plugin():
    role_plugin = paths.ROLES / "embedded_cloud" / "filter_plugins" / "shard_rules.py"
    shard_plugin = paths.ROLES / "shard" / "filter_plugins" / "shard_rules.py"
    assert role_plugin.resolve() == shard_plugin.resolve()


def test_each_host_of_a_transport_url_is_read_with_its_password_decoded():
    pw = secrets.url_quoted(CLOUD_LIKE)
    url = f"rabbit://shard:{pw}@127.0.0.1:5672,shard:{pw}@localhost:5672/shard-hb"
    assert secrets.url_hosts(url) == [
        {"user": "shard", "password": CLOUD_LIKE, "host": "127.0.0.1", "port": 5672},
        {"user": "shard", "password": CLOUD_LIKE, "host": "localhost", "port": 5672},
    ]


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("rabbit://mq.example/", [(None, None, "mq.example", None)]),
        ("rabbit://u:p@[fd00::5]:5673/v", [("u", "p", "fd00::5", 5673)]),
        ("rabbit://u@h1,u:@h2:1/", [("u", None, "h1", None), ("u", "", "h2", 1)]),
        # Unencoded, an '@' of the password is taken as oslo.messaging takes it.
        ("rabbit://u:p@q@h:5/v", [("u", "p@q", "h", 5)]),
    ],
)
def test_url_hosts_reads_as_oslo_messaging_does(url, hosts):
    got = [(h["user"], h["password"], h["host"], h["port"]) for h in secrets.url_hosts(url)]
    assert got == hosts


@pytest.mark.parametrize("port", ["s3cret", "5\u00b2", "99999", "0"])
def test_a_port_that_is_not_a_port_number_is_refused_without_its_text(port):
    with pytest.raises(ValueError) as exc:
        secrets.url_hosts(f"rabbit://u:p@h1:5672,u:p@h2:{port}/")
    assert port not in str(exc.value) and "host #2" in str(exc.value)


@pytest.mark.parametrize(
    ("url", "host", "password"),
    [
        # The authority ends where urllib's netloc does (oslo.messaging reads that):
        # an '@' in the virtual host or the query is not the user information's end.
        ("rabbit://u:p@h:5672/vhost?x=a@b", "h", "p"),
        ("rabbit://u:p@h/my@vhost", "h", "p"),
        ("rabbit://u:p@h1,u:p@h2?ssl=1", "h2", "p"),
    ],
)
def test_the_authority_ends_where_oslo_messaging_s_does(url, host, password):
    assert (secrets.url_hosts(url)[-1]["host"], secrets.url_hosts(url)[-1]["password"]) == (
        host,
        password,
    )


def test_a_port_that_is_not_a_number_is_refused_without_the_text():
    with pytest.raises(ValueError) as exc:
        secrets.url_hosts("rabbit://u:p@h1:5672,u:p@h2:s3cret/")
    assert "s3cret" not in str(exc.value) and "host #2" in str(exc.value)


def test_the_embedded_clouds_urls_are_masked_for_every_host_in_every_form():
    pw = secrets.url_quoted(CLOUD_LIKE)
    credentials = {
        "transport_url": f"rabbit://shard:{pw}@127.0.0.1:5672,shard:{pw}@localhost:5672/v",
        "glance": {"database_connection": f"mysql+pymysql://shard:{pw}@127.0.0.1:3306/glance"},
    }
    masked = secrets.masked(credentials)
    assert masked["transport_url"] == "rabbit://****@localhost:5672/v"
    assert masked["glance"]["database_connection"] == "mysql+pymysql://****@127.0.0.1:3306/glance"
    assert secrets.secrets_found(json.dumps(masked).encode(), {"p": CLOUD_LIKE}) == []
    # The scan finds the encoded password in the real URL (the form url_quoted writes).
    assert secrets.secrets_found(json.dumps(credentials).encode(), {"p": CLOUD_LIKE}) == [
        ("p", "url-encoded")
    ]
    assert pw.encode() in secrets.written_forms(CLOUD_LIKE).values()


def test_secret_values_are_what_masked_hides():
    """The scan's list (the faults tier's): each secret key's value, each URL's passwords."""
    # URLs as oslo.messaging and SQLAlchemy read them: passwords percent-encoded.
    encoded = quote(HARD, safe="")
    credentials = dict(
        CREDENTIALS,
        transport_url=f"rabbit://nova:{encoded}@h1.example:5672,nova:{encoded}@h2.example/v",
        glance=dict(
            CREDENTIALS["glance"],
            database_connection=f"mysql+pymysql://glance:{encoded}@db.example/glance",
        ),
    )
    found = secrets.secret_values(credentials)
    assert found == {
        "cloud.auth.password": HARD,
        "cloud.auth.application_credential_secret": "app-" + HARD,
        "transport_url (password #0)": HARD,
        "transport_url (password #1)": HARD,
        "glance.database_connection (password #0)": HARD,
        "glance.stores.s3.s3_store_access_key": "AKIA" + HARD,
        "glance.stores.s3.s3_store_secret_key": HARD,
        "glance.stores.swift.swift_store_key": "sw-" + HARD,
    }
    masked = json.dumps(secrets.masked(credentials))
    assert not any(value in masked for value in found.values())
