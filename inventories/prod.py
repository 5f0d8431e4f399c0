"""Example production inventory: three real Debian 12 servers (master, cascade, downstream).

Edit the addresses and names (each inventory name must be the server's hostname, `uname -n`:
heartbeat uses it), set the secrets, preview, apply:

    export PGCASCADE_REPLICATION_PASSWORD=...   PGCASCADE_HEARTBEAT_KEY=...
    export PGCASCADE_BACKUP_CIPHER_PASS=...     # only with a backup repository host (below)
    # or put them in secrets/prod.env (git-ignored, mode 0600) as KEY=VALUE lines
    pyinfra inventories/prod.py deploy.py --dry
    pyinfra inventories/prod.py deploy.py
"""

_cluster = {
    "pg_version": 15,
    "pg_port": 5432,
    "pg_synchronous": True,  # the master's direct standby is synchronous
    "pg_settings": {"wal_keep_size": "1GB"},
    # Application servers allowed in pg_hba.conf (one /32 entry each, never a /24).
    "pg_app_hosts": [{"address": "192.168.1.20", "database": "cyclos4", "user": "cyclos"}],
    "vip_address": "192.168.1.15",  # the address applications use; follows the master
    "vip_prefix": 24,
    "vip_interface": "eth0",
    # The PostgreSQL apt repository (PGDG), signed by its key.
    "apt_repository": {
        "line": "deb [signed-by=/etc/apt/keyrings/pgdg.asc] http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main",
        "key_url": "https://www.postgresql.org/media/keys/ACCC4CF8.asc",
        "filename": "pgdg",
    },
    "secrets_file": "secrets/prod.env",
}
_ssh = {"ssh_user": "admin", "_sudo": True}

master = [("master-host", {**_cluster, **_ssh, "ssh_hostname": "192.168.1.11"})]
cascade = [("cascade-host", {**_cluster, **_ssh, "ssh_hostname": "192.168.1.12",
                             "pg_upstream": "master-host", "pg_application_name": "standby_1"})]
downstream = [("downstream-host", {**_cluster, **_ssh, "ssh_hostname": "192.168.1.13",
                                   "pg_upstream": "cascade-host", "pg_application_name": "standby_2"})]
# A pgBackRest repository host (README, Backups): uncomment to back the cluster up there.
# backup = [("backup-host", {**_cluster, **_ssh, "ssh_hostname": "192.168.1.14"})]
