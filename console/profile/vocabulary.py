"""The words a profile may use that name machinery: what the probes measure, what a
snapshot can show, what a fix command may paste, what a check or a checklist item reads.

A profile names these; the console's code computes them. A new word here is new code.
"""

from __future__ import annotations

FORMAT = 1  # [profile] format: bumped when a profile written for an older console must change

# Decision-matrix signals a machine measures. The numeric ones need a threshold (`above`).
NUMERIC_SIGNALS = {
    "response_time_s": "seconds the functional probe's request took (the slowest host)",
    "error_rate": "error lines per probe request in the log window (the worst host)",
    "memory_mb": "resident memory of the service process in MB (the largest host)",
}
BOOLEAN_SIGNALS = {
    "missing_data": "the functional probe answered, but without data (or with a failure shape)",
    "unhealthy": "the health endpoint that tells the truth says not ok (or the service is down)",
}
SIGNALS = {**NUMERIC_SIGNALS, **BOOLEAN_SIGNALS}

SEVERITIES = ("HIGH", "MEDIUM", "LOW")  # most severe first: the matrix recommends the most severe lit row

# What the console can tell from a snapshot, the journal, or a failed step: a
# troubleshooting issue applies when any of its facts holds.
FACTS = {
    "stale_process": "the running process has other flag values than the env file (a restart did not re-read it)",
    "not_running": "no service process, or the API does not answer at all",
    "restart_failed": "a restart command failed during a run",
    "env_file_unparsable": "the env file holds lines the service cannot parse",
    "log_flag_mismatch": "the log's last flag line disagrees with the env file",
    "partial_flag_mismatch": "a dependent flag is off in the env file, its parent on, and the log still shows it on",
    "db_rollback_failed": "the last run failed at a database step",
    "probe_failed": "the functional probe answered with one of the profile's failure shapes",
    "health_disagrees": "the health endpoints disagree (the one that does not tell the truth says ok)",
}
# Facts that only make sense for a profile that has what they talk about.
FACT_NEEDS = {
    "partial_flag_mismatch": "flags that depend on another (depends_on)",
    "db_rollback_failed": 'an action of kind = "database"',
    "health_disagrees": "both a liveness and a readiness endpoint",
}

# {placeholders} a troubleshooting fix or remedy may paste, as the environment has them.
# A fix line naming one the environment does not set is left out; {a|b} takes the first set.
FIX_PLACEHOLDERS = {
    "env_file": "the environment's env file",
    "restart_command": "its restart command",
    "reload_command": "its reload command (e.g. systemctl daemon-reload)",
    "force_restart_command": "its forced fresh start",
    "service_log_command": "the command that shows the service's own log (e.g. journalctl -u …)",
    "pid_command": "the command that prints the service's pid",
    "pid": "the service's pid, as the pid command printed it",
    "environ": "the process environment file of that pid ([process] environ)",
    "log_file": "the application log file",
    "repo_path": "the service's git checkout",
    "flag_envs": "the flags' env names, separated by spaces",
    "flag_grep": "an extended regular expression matching the flags' lines in an env file",
    "table": "the database action's table",
    "columns": "the database action's columns, comma-separated",
    "manual_sql": "the SQL that drops the database action's indexes and columns by hand (several lines)",
}

# What a validation checks; each kind takes its own thresholds (see THRESHOLD_KEYS).
CHECK_KINDS = {
    "health": "the health endpoints answer ok (the truthful one decides)",
    "flags": "the log's flag line and the process environment show the flags the rollback meant",
    "probe": "the functional probe returns data, no failure shape, in the mode the flags imply",
    "errors": "no more than max_error_lines error lines in the last window_lines log lines",
    "response_time": "the functional probe answers in under below_s seconds",
    "memory": "the service's resident memory is under below_mb MB",
}

# Evidence other than a validation that ticks a checklist item by machine.
EVIDENCE = {
    "notified": "a notification of the rollback was delivered",
    "report_written": "the incident report was written",
}

ACTION_KINDS = {
    "flags": 'turn flags off (and, with others = "on", the rest on), restart, wait for the effect',
    "code": "revert the release commit found by its message, rebuild, restart",
    "database": "keep a copy of the columns, then drop the migration's indexes and columns in one transaction",
    "combined": "other actions, one after the other, as one run",
    "advice": "changes nothing: a recommendation for a person (investigate, check settings)",
}

PARAMETER_TYPES = ("string", "integer", "secret")
JSON_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")

# Faults the simulator can inject in a drill (console/simulator/faults.py).
FAULT_KEYS = {
    "latency_s": float,
    "error_rate": float,
    "memory_mb": float,
    "crash_on_start": bool,
    "stale_restart": bool,
    "ready_down": bool,
    "rollback_script_fails": bool,
    "caused_by": str,
}
