# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""What counts as a secret in a target cloud's credentials, and their masked copy.

A shard's configuration is rendered twice from the same templates: once with
the credentials (what the service reads) and once with masked() credentials
(what the job's logs show). No text is post-processed: whatever a template
does with a value, the logged copy can only hold the marker.

Used by Jinja (the shard role's ``shard_masked`` filter) and by ./shard
(shard_jobs.rules.secrets). Standard library only, no import of another
module_utils file.
"""

import base64
import re
from urllib.parse import quote, quote_plus, unquote

MARKER = "****"
# Key names whose values are secrets: passwords, secrets, tokens, keys,
# credentials (application credentials' secrets, store keys, ...).
SECRET_KEY_RE = re.compile(
    r"(^|[_-])(password|passwd|secret|token|key|credential|passphrase)s?($|[_-])",
    re.IGNORECASE,
)
# scheme://... : a URL whose user information must go (a transport URL may name
# several hosts, each with its own user and password).
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_AUTHORITY_END_RE = re.compile(r"[/?#]")
# ASCII digits only: str.isdigit() takes '²', which int() then refuses quoting it.
_PORT_RE = re.compile(r"[0-9]{1,5}")


def url_quoted(value):
    """value percent-encoded for the user information of a URL (a transport URL,
    a database connection): every character but letters, digits and '-._~'.
    Jinja's urlencode keeps '/', which ends a URL's authority; a ':' would end
    the user name, an '@' the user information and a ',' a transport URL's
    host. oslo.messaging and SQLAlchemy decode the password again."""
    return quote(value, safe="")


def url_hosts(url):
    """Each host of a URL as oslo.messaging reads a transport URL: a list of dicts
    (user, password: decoded, None when absent; host: without an IPv6 address's
    brackets; port: an int or None). The authority ends at the first '/', '?' or
    '#' (urllib's netloc, which oslo.messaging reads: a password must be encoded,
    url_quoted); its hosts are comma separated, each split at its last '@'."""
    match = _URL_RE.match(url)
    rest = match.group("rest") if match else url
    netloc = _AUTHORITY_END_RE.split(rest, maxsplit=1)[0]
    hosts = []
    for number, part in enumerate(netloc.split(","), 1):
        userinfo, at, address = part.rpartition("@")
        user = password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            user, password = unquote(user), unquote(secret) if colon else None
        if address.startswith("["):  # [IPv6 address]:port
            host, _, port = address[1:].partition("]")
            port = port[1:]
        else:
            host, _, port = address.partition(":")
        # Never the text itself in the message: it may be a password's.
        if port and not (_PORT_RE.fullmatch(port) and 0 < int(port) < 65536):
            raise ValueError(f"host #{number} of the URL has a port that is not a port number")
        hosts.append(
            {
                "user": user,
                "password": password,
                "host": unquote(host),
                "port": int(port) if port else None,
            }
        )
    return hosts


def is_secret_key(name):
    return isinstance(name, str) and SECRET_KEY_RE.search(name) is not None


def masked_url(value):
    """A URL without any user information: everything between the scheme and the
    last '@' before the path goes, whatever characters a password holds (an
    unencoded ':', '@', ',' or '/' included). For several hosts only the last
    host's address stays; the rest was inside the user information's reach."""
    match = _URL_RE.match(value)
    if not match or "@" not in match.group("rest"):
        return value
    rest = match.group("rest")
    at = rest.rindex("@")
    return f"{match.group('scheme')}{MARKER}@{rest[at + 1 :]}"


def masked(value, key=None):
    """A deep copy of value in which every secret is the marker: the values of secret
    keys, and the user information of every URL."""
    if is_secret_key(key) and value not in (None, "", {}, []):
        return MARKER if not isinstance(value, (dict, list)) else _mask_all(value)
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return masked_url(value)
    return value


def url_passwords(url):
    """The password of each host of a URL, decoded (url_hosts reads them); [] for a
    string that is not a URL."""
    if not _URL_RE.match(url):
        return []
    try:
        return [host["password"] for host in url_hosts(url) if host["password"]]
    except ValueError:  # a malformed port: no secret can be read from it
        return []


def secret_values(value, where=""):
    """Where -> value of each secret that masked() hides: the values of secret keys
    (a password, an application credential's secret, a store's key) and the password
    of each host of every URL. What a scan for leaks looks for."""
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{where}.{key}" if where else str(key)
            if is_secret_key(key) and item not in (None, "", {}, []):
                if isinstance(item, (dict, list)):
                    # Everything under a secret key is secret (as _mask_all has it).
                    found.update(_all_strings(item, at))
                else:
                    found[at] = str(item)
            else:
                found.update(secret_values(item, at))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(secret_values(item, f"{where}[{i}]"))
    elif isinstance(value, str):
        for i, password in enumerate(url_passwords(value)):
            found[f"{where} (password #{i})"] = password
    return found


def _all_strings(value, where):
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(_all_strings(item, f"{where}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(_all_strings(item, f"{where}[{i}]"))
    elif value not in (None, ""):
        found[where] = str(value)
    return found


def _mask_all(value):
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v) for v in value]
    return MARKER


def written_forms(secret):
    """Name -> bytes: the ways a secret may be written somewhere, for a scan to look
    for. Raw, percent-encoded (as in a transport URL or a query), and base64 (standard
    and URL-safe) wherever it starts in the encoded data: base64 encodes bytes in
    groups of three, so a secret is looked for at each of the three alignments,
    without the characters it shares with its neighbours."""
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    forms = {"raw": raw}
    text = raw.decode(errors="surrogateescape")
    percent = {
        "url-encoded": quote(text, safe="", errors="surrogateescape"),
        # What a URL's user information needs encoded, and no more (RFC 3986).
        "userinfo-encoded": quote(text, safe="!$&'()*+,;=", errors="surrogateescape"),
        "form-encoded": quote_plus(text, safe="", errors="surrogateescape"),
    }
    for name, value in percent.items():
        forms[name] = value.encode()
        # Percent-encoding's hex digits may be written in either case.
        forms[name + " (lower-case hex)"] = re.sub(
            "%[0-9A-F]{2}", lambda m: m.group(0).lower(), value
        ).encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        first = -(-8 * shift // 6)  # the first character made of the secret's bits only
        last = 8 * (shift + len(raw)) // 6
        part = encoded[first:last]
        forms[f"base64+{shift}"] = part
        forms[f"base64url+{shift}"] = part.replace(b"+", b"-").replace(b"/", b"_")
    return forms


def secrets_found(data, secrets):
    """(name, form) of each secret (name -> value) written in data (bytes) in any of its
    written_forms: never the value itself."""
    hits = []
    for name, value in secrets.items():
        for form, written in written_forms(value).items():
            if written and written in data:
                hits.append((name, form))
                break
    return hits
