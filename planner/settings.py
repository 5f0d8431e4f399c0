"""Every managed file's variables, derived from the Topology (one import for the callers).

Pure: no pyinfra, no I/O. The deploys call these functions and pass the result to
``files.template`` (the templates live in ``templates/``; ``planner.render`` renders them the same
way for tests). Identical input gives identical output: everything is ordered.

Values that end up in a shell script are shell-quoted here (templates have no custom filters
under pyinfra), values for postgresql.conf are quoted here (``postgres_settings``), and the
inputs that reach a shell, a conf file and pg_hba.conf at once (addresses, the archive
directory, the replication user) are validated so that a bad inventory value fails with a clear
message instead of rendering a broken file.

Design decisions:

- One include file ``conf.d/pgcascade.conf`` with the same keys on every PostgreSQL host;
  standby keys (primary_conninfo, restore_command, ...) are set on every host that has an
  upstream (PostgreSQL 12+ ignores them unless standby.signal exists). The master gets none.
- ``archive_mode = always`` on every host: the cascade relays WAL to its children's archives
  while it is still a standby, and a change of role or of children is a reload, not a restart.
- ``archive_command`` runs ``archive-wal`` with the child addresses baked in; a host without
  children uses ``/bin/true``.
- No password anywhere but the postgres user's ``.pgpass`` (0600).
- pg_hba.conf and .pgpass list every cluster host (the host itself included: the status script
  connects to each host by address, its own too), so they are the same on every host and stay
  valid whichever host becomes whose upstream after a failover.
"""
from __future__ import annotations

from planner.checks import (  # noqa: F401
    _BARE_VALUE,
    _CONF_DIRECTIVES,
    _GUC_NAME,
    _SAFE_ADDRESS,
    _SAFE_CONNINFO_VALUE,
    _SAFE_HA_KEY,
    _SAFE_HBA_WORD,
    _SAFE_PATH,
    _SAFE_ROLE,
    _application_name,
    _check_address,
    _check_cluster,
    _host_address_spec,
    _is_ip,
    _node,
)
from planner.file_vars import (  # noqa: F401
    CASCADE_FAILED_DIRECTORY,
    CASCADE_FAILED_PATH,
    CASCADE_MONITOR_INTERVAL,
    CASCADE_MONITOR_PATH,
    CASCADE_MONITOR_UNIT,
    CASCADE_MONITOR_UNIT_PATH,
    CASCADE_PROBE_TIMEOUT,
    CONFIG_RELOAD_TIMEOUT,
    HEARTBEAT_START_FILES,
    HEARTBEAT_STARTED_COPY_DIRECTORY,
    HaHost,
    HbaEntry,
    ManagedFile,
    StatusHost,
    UcastPeer,
    _ha_peer,
    _hba_word,
    app_hba_entries,
    archive_wal_vars,
    authkeys_vars,
    boot_guard_dropin_path,
    boot_guard_dropin_vars,
    cascade_failed_vars,
    cascade_monitor_unit_vars,
    cascade_monitor_vars,
    cascade_variant_path,
    cluster_hba_entries,
    ha_lib_vars,
    ha_script_vars,
    ha_watch_unit_vars,
    heartbeat_dropin_vars,
    heartbeat_vars,
    hostrules_config,
    hostrules_config_vars,
    hosts_entries,
    managed_files,
    pgpass_lines,
    postgres_restart_vars,
    render_vars_hba,
    render_vars_pgpass,
    replication_status_vars,
    restart_dropin_path,
    restart_unit_name,
    vip_resource_vars,
)
from planner.gucs import (  # noqa: F401
    _STRING_GUCS,
    DERIVED_GUCS,
    MANAGED_GUCS,
    STANDBY_GUCS,
    TUNABLE_DEFAULTS,
    UPSTREAM_ONLY_GUCS,
    _extra_settings,
    archive_cleanup_command,
    archive_command,
    archive_targets,
    config_file_paths,
    desired_values,
    guc_names,
    postgres_settings,
    primary_conninfo,
    render_vars_pgconf,
    restore_command,
    synchronous_standby_names,
    with_repository_push,
)

# Split by concern; everything stays importable from here.
from planner.paths import (  # noqa: F401
    ARCHIVE_BACKLOG_DIRECTORY,
    ARCHIVE_NOWHERE,
    ARCHIVE_SSH_CONTROL_PATH,
    ARCHIVE_WAL_PATH,
    BOOT_GUARD_PATH,
    CONNECT_TIMEOUT,
    HA_DIRECTORY,
    HA_LIB_PATH,
    HA_SSH_TIMEOUT,
    HA_WATCH_PATH,
    HA_WATCH_UNIT_PATH,
    HAPOSTGRES_PATH,
    HB_STANDBY_PATH,
    HB_TAKEOVER_PATH,
    HEARTBEAT_DROPIN_PATH,
    HEARTBEAT_UDP_PORT,
    HOSTRULES_CONFIG_PATH,
    HOSTRULES_DIRECTORY,
    INCLUDE_FILE_NAME,
    KNOWN_HOSTS_PATH,
    LIB_DIRECTORY,
    MAY_PROMOTE_PATH,
    PGPASS_PATH,
    POSTGRES_HOME,
    POSTGRES_RESTART_PATH,
    PRIMARY_FLAG_PATH,
    PROBE_TIMEOUT,
    PROMOTE_TIMEOUT,
    READY_TIMEOUT,
    RECLAIM_AFTER,
    REPLICATION_STATUS_PATH,
    RUNTIME_DIRECTORY,
    SOCKET_DIRECTORY,
    SSH_CONNECT_TIMEOUT,
    SUPPORTED_VERSIONS,
    SYNCSET_PATH,
    VIP_RESOURCE_PATH,
    WATCH_INTERVAL,
)
from planner.quoting import (  # noqa: F401
    _percent_escape,
    _syncrep_name,
    conf_quote,
    conf_value,
    conninfo,
    conninfo_value,
    pgpass_escape,
    shell_quote,
)
