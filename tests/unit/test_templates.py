"""templates/: rendered with jinja2 directly (planner.render uses pyinfra's options), checked
line by line, parsed back, and the shell scripts run against stub commands on PATH."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import textwrap

import pytest

from planner import backup, registry, settings
from planner.failover_cascade import without_cascade
from planner.model import AppHost, Cluster, Topology
from planner.render import RESERVED_NAMES, TEMPLATE_DIR, render, template_path
from planner.roles import with_master
from tests.unit.executables import write_executable
from tests.unit.topologies import VIP, node, three

PASSWORD = "pa:ss\\word's"
HB_KEY = "lab-secret"


def fan() -> Topology:
    return Topology(
        Cluster(
            vip=VIP,
            app_hosts=(AppHost("198.51.100.20", "cyclos4", "cyclos"),),
            settings=(("log_line_prefix", "%m [%p] it's "), ("shared_buffers", "256MB"),
                      ("wal_keep_size", "1GB")),
        ),
        (
            node("pg1", "master", "198.51.100.11"),
            node("pg2", "cascade", "198.51.100.12", "pg1", "standby_1", 1),
            node("pg3", "downstream", "198.51.100.13", "pg2", "standby_2", 2),
            node("pg4", "downstream", "198.51.100.14", "pg2", "it's \\odd", 2),
            node("pg5", "downstream", "198.51.100.16", "pg2", "standby_4", 2),
        ),
    )


def chain() -> Topology:
    return Topology(
        Cluster(vip=VIP, version=17, port=5433),
        (
            node("pg1", "master", "10.0.0.1"),
            node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
            node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
            node("pg4", "downstream", "10.0.0.4", "pg3", "standby_3", 3),
        ),
    )


TOPOLOGIES = {"three": three, "fan": fan, "chain": chain}
ALL_NODES = [(t, n.name) for t, build in TOPOLOGIES.items() for n in build().nodes]
HA_NODES = [(t, n.name) for t, build in TOPOLOGIES.items() for n in build().vip_holders]


def template_variables(topology: Topology, node_name: str) -> dict[str, dict]:
    """Every file the node gets: its variables, as the deploy builds them (deploys.managed_files)."""
    from types import SimpleNamespace

    from deploys.managed_files import template_vars
    from planner.secrets import HEARTBEAT_KEY, REPLICATION_PASSWORD

    ctx = SimpleNamespace(topology=topology, node=topology.node(node_name), this_node=topology.node(node_name),
                          held_failovers={},
                          secrets={HEARTBEAT_KEY: HB_KEY, REPLICATION_PASSWORD: PASSWORD})
    return {f.template: template_vars(ctx, f.template) for f in settings.managed_files(topology, node_name)}


def all_renders(topology: Topology, node_name: str) -> dict[str, str]:
    """Every file the node gets, rendered."""
    return {name: render(name, v) for name, v in template_variables(topology, node_name).items()}


# --- every template, every host --------------------------------------------------------------------


def test_every_template_is_used():
    on_disk = {f for f in os.listdir(TEMPLATE_DIR) if f.endswith(".j2")}
    used = ({f.template for f in settings.managed_files(fan(), "pg1")} | set(registry.file_variables(fan(), "pg1", None, None))
            | set(backup.TEMPLATES))
    assert on_disk == used


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_renders_are_clean_and_byte_identical(topology, node_name):
    first = all_renders(TOPOLOGIES[topology](), node_name)
    second = all_renders(TOPOLOGIES[topology](), node_name)
    assert first == second
    for name, text in first.items():
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        assert "\n\n\n" not in text, name
        assert not re.search(r"[ \t]+\n", text), f"{name}: trailing whitespace"
        assert "{{" not in text and "{%" not in text, name
        if name.endswith(".json.j2"):
            assert json.loads(text)["_comment"].startswith("Managed by pgcascade"), name
        else:
            assert text.startswith(("# Managed by pgcascade", "#!/bin/bash\n# Managed by pgcascade")), name


@pytest.mark.parametrize("topology, node_name", [("fan", "pg2"), ("three", "pg1")])
def test_pyinfra_renders_the_same_bytes(topology, node_name):
    """files.template renders with pyinfra's own Environment: it must give the same file."""
    from pyinfra.api.util import get_template

    top = TOPOLOGIES[topology]()
    for name, variables in template_variables(top, node_name).items():
        text = render(name, variables)
        variables = dict(variables)
        variables.update(host=None, state=None, inventory=None)  # what files.template adds
        assert get_template(template_path(name)).render(variables) == text, name


def test_render_refuses_names_pyinfra_reserves():
    for reserved in ("user", "mode", "name", "host", "_sudo"):
        with pytest.raises(ValueError, match="clash"):
            render("authkeys.j2", {"heartbeat_key": "k", reserved: 1})
    assert "dest" in RESERVED_NAMES


def test_render_is_strict():
    with pytest.raises(Exception, match="heartbeat_key"):
        render("authkeys.j2", {})


# --- conf.d/pgcascade.conf ---------------------------------------------------------------------------

# postgresql.conf's lexer (guc-file.l): a bare value, or a quoted string with '' and \ escapes.
_PG_LINE = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*
        (?P<value>'(?:[^'\\\n]|\\.|'')*'
                 |-?[0-9]+[A-Za-z]*|-?[0-9]*\.[0-9]+|[A-Za-z_][A-Za-z0-9_.:/-]*)
        \s*(\#.*)?$""",
    re.X,
)
# postgresql-common's read_conf_file (pg_ctlcluster, pg_lsclusters read conf.d too): anything else
# is "invalid line".
_DEBIAN_STRING = re.compile(r"^\s*([a-zA-Z0-9_.-]+)\s*(?:=|\s)\s*'((?:[^']|''|(?:(?<=\\)'))*)'\s*(?:#.*)?$")
_DEBIAN_SIMPLE = re.compile(r"^\s*([a-zA-Z0-9_.-]+)\s*(?:=|\s)\s*(-?[a-zA-Z0-9][a-zA-Z0-9._:/+-]*)\s*(?:\#.*)?$")


def pg_unquote(value: str) -> str:
    if not value.startswith("'"):
        return value
    body, out, i = value[1:-1], [], 0
    escapes = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 1
            out.append(escapes.get(body[i], body[i]))
        elif c == "'":
            i += 1
            out.append("'")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_pg_conf(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PG_LINE.match(line)
        assert match, f"PostgreSQL would not parse: {line!r}"
        assert _DEBIAN_STRING.match(line) or _DEBIAN_SIMPLE.match(line), (
            f"postgresql-common would not parse: {line!r}"
        )
        assert match["name"] not in values, f"{match['name']} set twice"
        values[match["name"]] = pg_unquote(match["value"])
    return values


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_pgconf_parses_back_to_the_desired_values(topology, node_name):
    top = TOPOLOGIES[topology]()
    text = render("pgcascade.conf.j2", settings.render_vars_pgconf(top, node_name))
    assert parse_pg_conf(text) == settings.desired_values(top, node_name)


def test_pgconf_quotes_a_single_quote():
    text = render("pgcascade.conf.j2", settings.render_vars_pgconf(fan(), "pg2"))
    assert "log_line_prefix = '%m [%p] it''s '\n" in text
    assert "synchronous_standby_names = 'FIRST 1 (\"standby_2\", \"it''s \\\\odd\", \"standby_4\")'\n" in text
    conninfo = parse_pg_conf(render("pgcascade.conf.j2", settings.render_vars_pgconf(fan(), "pg4")))[
        "primary_conninfo"
    ]
    assert "application_name='it\\'s \\\\odd'" in conninfo


@pytest.mark.parametrize(
    "topology, node_name, expected_lines",
    [
        (
            "three",
            "pg1",
            [
                "archive_command = '/usr/local/lib/pgcascade/archive-wal %p %f"
                " /var/lib/postgresql/wal_archive 198.51.100.12'",
                "archive_mode = always",
                "synchronous_standby_names = 'FIRST 1 (\"standby_1\")'",
                "# pg1 is the master: no upstream, so no primary_conninfo.",
            ],
        ),
        (
            "three",
            "pg2",
            [
                "archive_command = '/usr/local/lib/pgcascade/archive-wal %p %f"
                " /var/lib/postgresql/wal_archive 198.51.100.13'",
                "primary_conninfo = 'host=198.51.100.11 port=5432 user=replicator"
                " application_name=standby_1 passfile=/var/lib/postgresql/.pgpass connect_timeout=5'",
                "restore_command = 'test -f /var/lib/postgresql/wal_archive/%f &&"
                " cp /var/lib/postgresql/wal_archive/%f \"%p\"'",
                "archive_cleanup_command = '/usr/lib/postgresql/15/bin/pg_archivecleanup"
                " /var/lib/postgresql/wal_archive %r'",
                "recovery_target_timeline = 'latest'",
            ],
        ),
        ("three", "pg3", ["archive_command = '/bin/true'", "synchronous_standby_names = ''"]),
        (
            "fan",
            "pg2",
            [
                "archive_command = '/usr/local/lib/pgcascade/archive-wal %p %f"
                " /var/lib/postgresql/wal_archive 198.51.100.13 198.51.100.14 198.51.100.16'",
                "wal_keep_size = 1GB",
                "shared_buffers = 256MB",
            ],
        ),
        ("chain", "pg3", ["port = 5433", "archive_command = '/usr/local/lib/pgcascade/archive-wal"
                          " %p %f /var/lib/postgresql/wal_archive 10.0.0.4'"]),
    ],
)
def test_pgconf_lines(topology, node_name, expected_lines):
    text = render("pgcascade.conf.j2", settings.render_vars_pgconf(TOPOLOGIES[topology](), node_name))
    lines = text.splitlines()
    for line in expected_lines:
        assert line in lines
    settings_lines = [line for line in lines if line and not line.startswith(("#", "password_encryption"))]
    assert not any("password" in line for line in settings_lines)


def test_pgconf_has_the_same_structure_on_every_host():
    top = fan()

    def keys(name):
        return [line.split(" = ")[0] for line in render(
            "pgcascade.conf.j2", settings.render_vars_pgconf(top, name)).splitlines()
            if line and not line.startswith("#")]

    assert keys("pg2") == keys("pg3") == keys("pg5")


def test_pgconf_without_extras_has_no_extras_section():
    text = render("pgcascade.conf.j2", settings.render_vars_pgconf(three(), "pg1"))
    assert "Extra settings" not in text


# --- pg_hba.conf -------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_pg_hba(topology, node_name):
    top = TOPOLOGIES[topology]()
    text = render("pg_hba.conf.j2", settings.render_vars_hba(top, node_name))
    rows = [line.split("#")[0].split() for line in text.splitlines() if line and not line.startswith("#")]
    assert rows[:7] == [
        ["local", "all", "postgres", "peer"],
        ["local", "all", "all", "peer"],
        ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"],
        ["host", "all", "all", "::1/128", "scram-sha-256"],
        ["local", "replication", "all", "peer"],
        ["host", "replication", "all", "127.0.0.1/32", "scram-sha-256"],
        ["host", "replication", "all", "::1/128", "scram-sha-256"],
    ]
    for other in top.nodes:
        if other.name == node_name:
            continue
        assert ["host", "replication", "replicator", f"{other.address}/32", "scram-sha-256"] in rows
        assert ["host", "postgres", "replicator", f"{other.address}/32", "scram-sha-256"] in rows
    assert "/24" not in text
    assert VIP.address not in text
    assert all(r[-1] in ("peer", "scram-sha-256") for r in rows)
    assert "md5" not in text and "trust" not in text


def test_pg_hba_app_hosts():
    text = render("pg_hba.conf.j2", settings.render_vars_hba(fan(), "pg3"))
    assert "host    cyclos4         cyclos          198.51.100.20/32        scram-sha-256 # application host\n" in text


# --- .pgpass -----------------------------------------------------------------------------------------


def test_pgpass():
    text = render("pgpass.j2", settings.render_vars_pgpass(three(), "pg3", PASSWORD))
    entries = [line for line in text.splitlines() if not line.startswith("#")]
    assert entries == settings.pgpass_lines(three(), "pg3", PASSWORD)
    assert "198.51.100.11:5432:replication:replicator:pa\\:ss\\\\word's" in entries
    assert len(entries) == 6


# --- heartbeat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology, node_name", HA_NODES)
def test_ha_cf(topology, node_name):
    top = TOPOLOGIES[topology]()
    text = render("ha.cf.j2", settings.heartbeat_vars(top, node_name))
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    peer = next(n for n in top.vip_holders if n.name != node_name)
    me = top.node(node_name)
    assert f"ucast eth0 {peer.address}" in lines
    assert f"ucast eth0 {me.address}" not in lines
    assert [line for line in lines if line.startswith("node ")] == ["node pg1", "node pg2"]
    for line in ("use_logd no", "logfacility daemon", "logfile /var/log/ha-log", "keepalive 250ms",
                 "warntime 1500ms", "deadtime 2500ms", "initdead 6", "udpport 694", "auto_failback off"):
        assert line in lines
    # heartbeat wants udpport before the media (ucast) lines
    assert lines.index("udpport 694") < lines.index(f"ucast eth0 {peer.address}")
    assert not any(line.startswith(("bcast", "ping ")) for line in lines)


@pytest.mark.parametrize("topology, node_name", HA_NODES)
def test_haresources(topology, node_name):
    text = render("haresources.j2", settings.heartbeat_vars(TOPOLOGIES[topology](), node_name))
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    # hapostgres first (the promotion), then the VIP: heartbeat starts left to right and stops
    # right to left, so the VIP never points at a server that cannot take writes.
    assert lines == ["pg1 hapostgres pgcascade-vip::198.51.100.15/24/eth0"]


def test_authkeys():
    text = render("authkeys.j2", settings.authkeys_vars(HB_KEY))
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "auth 1",
        f"1 sha1 {HB_KEY}",
    ]
    assert "md5" not in text


# --- shell scripts: syntax -----------------------------------------------------------------------------


@pytest.mark.parametrize("topology, node_name", HA_NODES + [("fan", "pg4")])
def test_shell_scripts_pass_bash_n(tmp_path, topology, node_name):
    renders = all_renders(TOPOLOGIES[topology](), node_name)
    scripts = [n for n in renders if n.endswith(".sh.j2") or n == "hapostgres.j2"]
    assert scripts
    for name in scripts:
        path = tmp_path / name
        path.write_text(renders[name])
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"


# --- archive-wal, for real (rsync; ssh replaced by a stub running the command locally) -----------------

FAKE_SSH = r"""#!/bin/bash
# Stub ssh: skips the options, logs, and runs the remote command locally, like sshd's "sh -c".
while [ $# -gt 0 ]; do
    case $1 in
        -[oliFpEbcDeLRWJSOQmwBI]) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
target=$1
shift
printf '%s\n' "$target $*" >>"$FAKE_SSH_LOG"
case $target in
    *unreachable*) echo "ssh: connect to host $target port 22: No route to host" >&2; exit 255 ;;
esac
if [ "${1:-}" = rsync ] && [ -n "${FAKE_SSH_AFTER_RSYNC:-}" ]; then
    bash -c "$*" || exit
    bash -c "$FAKE_SSH_AFTER_RSYNC"
    exit 0
fi
exec bash -c "$*"
"""

SEGMENT = "000000010000000000000001"


@pytest.fixture
def archive_lab(tmp_path):
    assert shutil.which("rsync"), "rsync is not installed on this machine: `make setup` installs it"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_executable(bin_dir / "ssh", FAKE_SSH)
    script = tmp_path / "archive-wal"
    write_executable(script, render("archive-wal.sh.j2", settings.archive_wal_vars()))
    archive = tmp_path / "archive"
    archive.mkdir()
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    log = tmp_path / "ssh.log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_SSH_LOG": str(log),
        "HOME": str(tmp_path),
    }

    class Lab:
        def __init__(self):
            self.tmp, self.archive, self.pg_wal, self.log = tmp_path, archive, pg_wal, log

        def segment(self, content: bytes, name=SEGMENT):
            path = pg_wal / name
            path.write_bytes(content)
            return path

        def ship(self, name=SEGMENT, targets=("198.51.100.12",), archive_dir=None, extra_env=None):
            result = subprocess.run(
                [str(script), f"pg_wal/{name}", name, str(archive_dir or archive), *targets],
                cwd=tmp_path, env={**env, **(extra_env or {})}, capture_output=True, text=True,
                timeout=60,
            )
            return result

        def leftovers(self):
            return sorted(p.name for p in archive.iterdir() if p.name.startswith("."))

    return Lab()


def test_archive_wal_ships_then_accepts_the_same_then_refuses_a_different_content(archive_lab):
    original = os.urandom(200_000)
    archive_lab.segment(original)

    first = archive_lab.ship()
    assert first.returncode == 0, first.stderr
    assert (archive_lab.archive / SEGMENT).read_bytes() == original

    again = archive_lab.ship()
    assert again.returncode == 0, again.stderr
    assert "same content" in again.stderr

    archive_lab.segment(os.urandom(200_000))
    different = archive_lab.ship()
    assert different.returncode == 1
    assert "refusing to overwrite" in different.stderr
    assert (archive_lab.archive / SEGMENT).read_bytes() == original
    assert archive_lab.leftovers() == []


def test_archive_wal_uses_batch_ssh_with_the_pinned_known_hosts(archive_lab):
    archive_lab.segment(b"wal")
    assert archive_lab.ship().returncode == 0
    log = archive_lab.log.read_text()
    assert "198.51.100.12 bash -s --" in log
    assert "198.51.100.12 rsync --server" in log
    text = render("archive-wal.sh.j2", settings.archive_wal_vars())
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes",
                   "UserKnownHostsFile=/var/lib/postgresql/.ssh/known_hosts", "ConnectTimeout=10"):
        assert option in text


def test_archive_wal_fails_if_any_target_fails_but_feeds_the_others(archive_lab):
    archive_lab.segment(b"segment content")
    result = archive_lab.ship(targets=("unreachable.invalid", "198.51.100.13"))
    assert result.returncode == 1  # never ssh's 255: the archiver would exit
    assert "cannot check unreachable.invalid" in result.stderr
    assert (archive_lab.archive / SEGMENT).read_bytes() == b"segment content"


def test_archive_wal_fails_when_the_archive_directory_is_missing(archive_lab):
    archive_lab.segment(b"x")
    result = archive_lab.ship(archive_dir=archive_lab.tmp / "nowhere")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not (archive_lab.tmp / "nowhere").exists()


def test_archive_wal_race_with_a_different_copy_keeps_the_other_copy(archive_lab):
    """Another sender publishes a different file between the check and the publish."""
    archive_lab.segment(b"ours")
    target = archive_lab.archive / SEGMENT
    result = archive_lab.ship(extra_env={"FAKE_SSH_AFTER_RSYNC": f"printf theirs >{target}"})
    assert result.returncode == 1
    assert "appeared with a DIFFERENT content" in result.stderr
    assert target.read_bytes() == b"theirs"
    assert archive_lab.leftovers() == []


def test_archive_wal_race_with_an_identical_copy_is_success(archive_lab):
    archive_lab.segment(b"same")
    target = archive_lab.archive / SEGMENT
    result = archive_lab.ship(extra_env={"FAKE_SSH_AFTER_RSYNC": f"printf same >{target}"})
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == b"same"
    assert archive_lab.leftovers() == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["pg_wal/missing", "000000010000000000000009", "ARCHIVE", "10.0.0.2"], "is not a file"),
        (["pg_wal/x", "../etc", "ARCHIVE", "10.0.0.2"], "refusing the file name"),
        (["pg_wal/x", "x", "ARCHIVE"], "usage"),
    ],
)
def test_archive_wal_refuses_bad_arguments(archive_lab, args, message):
    archive_lab.segment(b"x", name="x")
    script = archive_lab.tmp / "archive-wal"
    args = [str(archive_lab.archive) if a == "ARCHIVE" else a for a in args]
    result = subprocess.run([str(script), *args], cwd=archive_lab.tmp, capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"]})
    assert result.returncode == 1
    assert message in result.stderr


def test_archive_wal_ships_history_and_partial_files(archive_lab):
    for name in ("00000002.history", f"{SEGMENT}.partial"):
        archive_lab.segment(name.encode(), name=name)
        assert archive_lab.ship(name=name).returncode == 0
        assert (archive_lab.archive / name).read_bytes() == name.encode()


def test_archive_wal_checksum_is_sha256(archive_lab):
    content = b"checksum me"
    archive_lab.segment(content)
    archive_lab.ship()
    assert hashlib.sha256(content).hexdigest() in archive_lab.log.read_text()


# --- replication-status, with a stub psql --------------------------------------------------------------


def test_replication_status(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_log = tmp_path / "argv"
    write_executable(bin_dir / "psql", textwrap.dedent(f"""\
        #!/bin/bash
        echo "$* PGPASSFILE=$PGPASSFILE" >>{argv_log}
        while [ $# -gt 0 ]; do
            case $1 in -h) address=$2; shift 2 ;; -c) sql=$2; shift 2 ;; *) shift ;; esac
        done
        case $sql in
            *pg_is_in_recovery*)
                case $address in
                    198.51.100.11) echo 'f|16785408||' ;;
                    198.51.100.12) echo 't||16785408|16777216' ;;
                    *) echo "psql: error: connection to server at \\"$address\\" failed" >&2; exit 2 ;;
                esac ;;
            *pg_stat_replication*) echo " application_name | state"; echo " standby_1 | streaming" ;;
        esac
        """))
    variables = settings.replication_status_vars(three())
    variables["pg_bin_directory"] = str(bin_dir)
    script = tmp_path / "replication-status"
    write_executable(script, render("replication-status.sh.j2", variables))
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=30,
                            env={"PATH": os.environ["PATH"]})
    out = result.stdout
    assert "Primary: pg1 (198.51.100.11, master in the topology)\n  current: 16785408 bytes" in out
    assert "Standby: pg2 (198.51.100.12, cascade in the topology)" in out
    assert "  receive: 16785408 bytes. Behind: 0 KB" in out
    assert "  replay:  16777216 bytes. Behind: 8 KB" in out
    assert "Unreachable: pg3 (198.51.100.13, downstream in the topology)" in out
    assert "pg_stat_replication on pg1 (198.51.100.11):" in out
    assert "standby_1 | streaming" in out
    argv = argv_log.read_text()
    assert "-U replicator -d postgres" in argv
    assert "PGPASSFILE=/var/lib/postgresql/.pgpass" in argv
    assert "password" not in argv.lower()


def test_a_cascade_variant_never_equals_a_regular_include_file():
    """After a switchover (pg2 master, pg1 cascade), pg3's regular file points at pg1, as the
    inventory's variant without pg2 does: same settings. The cascade monitor compares the files
    to tell "failed over" from "watching", so their bytes must differ."""
    regular = render("pgcascade.conf.j2", settings.render_vars_pgconf(with_master(three(), "pg2"), "pg3"))
    variant = render("pgcascade.conf.j2", settings.render_vars_pgconf(without_cascade(three(), "pg2"), "pg3",
                                                                      variant_without="pg2"))
    assert parse_pg_conf(regular) == parse_pg_conf(variant)
    assert regular != variant
    assert "without the cascading standby pg2" in variant
