"""Read paths that only read: the dashboard's query API and ``privaudit sql`` refuse every statement
that writes (files, the store, the server's state), whatever form it takes; the dashboard refuses
requests for other hosts and from other sites, and guards its token (issue 18, items 1, 2, 11)."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

from .conftest import Dashboard, count, wait_for

pytestmark = pytest.mark.integration


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "privaudit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated embedded store with a canary table of 3 rows (written with ``sql --write``)."""
    data = tmp_path_factory.mktemp("read-paths") / "data"
    assert _cli("db", "migrate", "--data-dir", str(data)).returncode == 0
    for statement in ("CREATE TABLE privaudit.canary (x UInt8) ENGINE = MergeTree ORDER BY x",
                      "INSERT INTO privaudit.canary VALUES (1), (2), (3)"):
        done = _cli("sql", "--write", "--data-dir", str(data), statement)
        assert done.returncode == 0, done.stderr
        assert "WARNING" in done.stderr and "may change the audit record" in done.stderr
    return data


#: Reads, in the forms a person writes them.
READS = [
    "SELECT 1",
    "select count() from privaudit.canary;",
    "WITH t AS (SELECT x FROM privaudit.canary) SELECT sum(x) FROM t",
    "SELECT 1 UNION ALL SELECT 2",
    "SHOW TABLES FROM privaudit",
    "DESCRIBE TABLE privaudit.canary",
    "EXPLAIN SELECT x FROM privaudit.canary",
    "SELECT 'INTO OUTFILE' AS words, 'file(x)' AS more",  # the words inside a string are no clause
]


def _writes(target: Path) -> list[str]:
    """Statements that would write a file (``target``), the store, or the server's state."""
    t = str(target)
    return [
        f"SELECT 1 INTO OUTFILE '{t}'",
        f"select * from privaudit.canary into outfile '{t}' APPEND",
        f"SELECT 1 INTO OUTFILE '{t}' TRUNCATE FORMAT CSV",
        f"SELECT 1 /* a comment */ INTO\n\tOUTFILE '{t}' COMPRESSION 'gzip'",
        f"SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{t}'",
        f"WITH 1 AS a SELECT a INTO OUTFILE '{t}'",
        f"SHOW TABLES FROM privaudit INTO OUTFILE '{t}'",
        f"DESCRIBE privaudit.canary INTO OUTFILE '{t}'",
        f"EXPLAIN SELECT 1 INTO OUTFILE '{t}'",
        "KILL QUERY WHERE 1",
        "SELECT file('/etc/hostname')",
        "SELECT length(FILE('/etc/passwd'))",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'x String')",
        "INSERT INTO privaudit.canary VALUES (9)",
        "INSERT INTO privaudit.alerts (group_key) SELECT 'fake'",
        "ALTER TABLE privaudit.canary DELETE WHERE 1",
        "ALTER TABLE privaudit.canary UPDATE x = 0 WHERE 1",
        "DELETE FROM privaudit.canary WHERE 1",
        "TRUNCATE TABLE privaudit.canary",
        "DROP TABLE privaudit.canary",
        "RENAME TABLE privaudit.canary TO privaudit.gone",
        "CREATE TABLE privaudit.more (x UInt8) ENGINE = Memory",
        "OPTIMIZE TABLE privaudit.canary FINAL",
        "SYSTEM DROP MARK CACHE",
        "SET readonly = 0",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1; DROP TABLE privaudit.canary",
        "EXPLAIN PIPELINE INSERT INTO privaudit.canary VALUES (1)",
        "",
    ]


def _intact(data: Path, written: Path) -> None:
    assert not written.exists(), f"{written} was written"
    assert count(data, "SELECT count() FROM privaudit.canary") == 3
    assert count(data, "SELECT sum(x) FROM privaudit.canary") == 6
    assert count(data, "SELECT count() FROM privaudit.alerts") == 0


def test_sql_reads_by_default_and_refuses_every_write_form(store_dir: Path, tmp_path: Path) -> None:
    written = tmp_path / "outfile.txt"
    for query in READS:
        done = _cli("sql", "--data-dir", str(store_dir), "--json", query)
        assert done.returncode == 0, (query, done.stderr)
    for query in _writes(written):
        refused = _cli("sql", "--data-dir", str(store_dir), query)
        assert refused.returncode == 2, (query, refused.stdout, refused.stderr)
        [line] = refused.stderr.strip().splitlines()[-1:]
        assert line.startswith("privaudit: error: "), (query, refused.stderr)
        assert "Traceback" not in refused.stderr
    _intact(store_dir, written)
    helped = _cli("sql", "--help")
    assert "--write" in helped.stdout and "audit record" in helped.stdout and "reads only" in helped.stdout


def test_sql_write_changes_the_store_only_when_asked_and_logs_each_write(store_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _cli("db", "migrate", "--data-dir", str(data)).returncode == 0
    made = _cli("sql", "--write", "--data-dir", str(data), "CREATE TABLE privaudit.scratch (x UInt8) ENGINE = Memory")
    assert made.returncode == 0
    warned = [line for line in made.stderr.splitlines() if "WARNING" in line]
    assert len(warned) == 1 and "CREATE TABLE privaudit.scratch" in warned[0]
    read = _cli("sql", "--write", "--data-dir", str(data), "SELECT count() FROM privaudit.scratch")
    assert read.returncode == 0 and "WARNING" not in read.stderr  # a read under --write is a read
    dropped = _cli("sql", "--write", "--data-dir", str(data), "DROP TABLE privaudit.scratch")
    assert dropped.returncode == 0 and "DROP TABLE privaudit.scratch" in dropped.stderr


def _request(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=True)
        sent = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _api_sql(query: str) -> str:
    return "/api/sql?" + urllib.parse.urlencode({"q": query})


def test_the_dashboards_query_api_runs_reads_and_refuses_every_write_form(store_dir: Path, tmp_path: Path) -> None:
    written = tmp_path / "outfile.txt"
    server = Dashboard(store_dir).wait()
    try:
        for query in READS:
            status, _, body = _request(server.port, _api_sql(query))
            assert status == 200, (query, body)
        for query in _writes(written):
            status, _, body = _request(server.port, _api_sql(query))
            assert status == 400, (query, status, body)
            assert json.loads(body)["error"]
        # the same through privaudit sql, which goes through the serving process on a held store
        through = _cli("sql", "--data-dir", str(store_dir), f"SELECT 1 INTO OUTFILE '{written}'")
        assert through.returncode == 2 and "INTO OUTFILE" in through.stderr
    finally:
        server.stop()
    _intact(store_dir, written)


@pytest.mark.parametrize(("headers", "status"), [
    ({"Host": "attacker.example"}, 400),  # DNS rebinding: another site's name resolving here
    ({"Host": "attacker.example:{port}"}, 400),
    ({"Host": "127.0.0.1.nip.io:{port}"}, 400),
    ({"Sec-Fetch-Site": "cross-site"}, 403),  # an <img> or fetch() on another site's page
    ({"Sec-Fetch-Site": "same-site"}, 403),  # another port of this host is another origin
    ({"Origin": "http://attacker.example"}, 403),
    ({"Origin": "null"}, 403),  # a sandboxed frame or a file:// page
    ({"Origin": "http://127.0.0.1:1"}, 403),
    ({"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:{port}"}, 200),  # the page's own scripts
    ({"Sec-Fetch-Site": "none"}, 200),  # typed in the address bar
    ({"Host": "localhost:{port}"}, 200),
])
def test_the_dashboard_refuses_other_hosts_and_other_sites(store_dir: Path, headers: dict[str, str],
                                                           status: int) -> None:
    server = Dashboard(store_dir).wait()
    try:
        sent = {k: v.format(port=server.port) for k, v in headers.items()}
        got, _, body = _request(server.port, _api_sql("SELECT 1"), sent)
        assert got == status, (sent, body)
        # a link from another site (an alert's) may open the page itself, and only that
        if "Sec-Fetch-Site" in headers and status == 403:
            opened, _, _ = _request(server.port, "/", {**sent, "Sec-Fetch-Mode": "navigate"})
            assert opened == 200
            navigated_api, _, _ = _request(server.port, _api_sql("SELECT 1"), {**sent, "Sec-Fetch-Mode": "navigate"})
            assert navigated_api == 403
    finally:
        server.stop()


@pytest.mark.parametrize("token", ["Zq", "short-token-of-31-characters-xx", " " * 40, "a" * 64, " " + "k3y-" * 9])
def test_off_loopback_a_short_or_blank_token_is_refused(store_dir: Path, token: str) -> None:
    refused = _cli("dashboard", "--data-dir", str(store_dir), "--host", "0.0.0.0", "--port", "0",
                   env={**os.environ, "PRIVAUDIT_DASHBOARD_TOKEN": token}, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert "at least 32 characters, 8 of them distinct" in refused.stderr
    if token.strip():
        assert token not in refused.stderr  # the error names its length, not the token


def test_off_loopback_without_a_token_one_is_made_shown_once_never_logged_and_kept_out_of_the_cookie(
        store_dir: Path) -> None:
    server = Dashboard(store_dir, "--host", "0.0.0.0", env={"PRIVAUDIT_LOG_LEVEL": "DEBUG"}).wait()
    assert _request(server.port, "/api/filters")[0] == 401
    assert _request(server.port, "/?" + urllib.parse.urlencode({"token": "w" * 43}))[0] == 401
    # the token is said once, where the dashboard's address is said, as a link
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(server.proc.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    assert wait_for(lambda: any("shown once" in line for line in lines), timeout=30), lines
    [link] = re.findall(r"(http://\S+\?token=(\S+))", next(line for line in lines if "shown once" in line))
    token = urllib.parse.unquote(link[1])
    assert len(token) >= 32
    try:
        status, headers, _ = _request(server.port, f"/?token={link[1]}&view=x")
        assert status == 303 and headers["location"] == "/?view=x"  # the token leaves the address bar
        cookie = headers["set-cookie"]
        assert token not in cookie and urllib.parse.quote(token) not in cookie
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        session = cookie.split(";")[0]
        assert _request(server.port, "/api/filters", {"Cookie": session})[0] == 200
        assert _request(server.port, "/api/filters", {"Cookie": session[:-2] + "xx"})[0] == 401  # signed
        assert _request(server.port, "/api/filters", {"Authorization": f"Bearer {token}"})[0] == 200
        for path in ("/api/panel/totals?to=9999-12-31", "/api/panel/totals?from=0001-01-01&to=0002-01-01"):
            assert _request(server.port, path, {"Cookie": session})[0] == 400, path
    finally:
        server.stop()
    reader.join(10)
    told = "".join(lines) + server.proc.stderr.read()  # type: ignore[union-attr]
    assert told.count(token) == 1, "the token is said once and never logged"
    assert "DEBUG" in told  # the log was at DEBUG, and still did not name it
