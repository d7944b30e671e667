"""What the simulate command says about the default simulation (analyticbot's): kept with
the simulator, which plays that service, so the command line names no service itself.
Nothing here imports the simulator's machinery: `--help` stays fast."""

SERVICE = "analyticbot"
LOGIN_EMAIL_LINE = "Probe login: ops-probe@analyticbot.example, password in {secrets}/<env>.password"

SIMULATE_HELP = """\
Runs the simulated analyticbot service: per environment, one API process per host on
127.0.0.1 (flags read from its env file at start), a git checkout with the Phase 4 commit,
and, when PostgreSQL is installed, a throwaway cluster with the posts table and
migrations 004/005 applied. Writes DIR/console.toml for the console, then stays in the
foreground until Ctrl-C or SIGTERM, which stop every process it started.

Re-running on the same DIR starts afresh: whatever a previous run left is stopped, and
its hosts, secrets, git checkouts and config are replaced (DIR/journal.jsonl is kept).
A DIR that is neither empty nor a simulation is refused.

--profile FILE simulates the service that profile describes instead (its flags, log
lines, health endpoints and probe answers, generated from the profile's predicates; no
database), and the config's environments say `profile = FILE`. The Phase 4 profile
(the default) is the analyticbot simulation above.
"""

FAULT_HELP = """\
Faults (KEY=VALUE):
  latency_s=SECONDS        added to every best-times request
  error_rate=0..1          share of best-times requests failing (HTTP 500 / status "failed")
  memory_mb=MB             grow the process's real RSS to MB (0 releases it)
  crash_on_start=true      the next (re)start crashes with a traceback in the service log
  stale_restart=true       restart keeps the old environment (reload or force-restart fixes it)
  ready_down=true          /health/ready reports the database down; /health stays "healthy"
  rollback_script_fails=true  004_rollback.sql fails right after its first DROP
  caused_by=FEATURE        latency/errors/memory only while FEATURE is on in the process
                           (advanced, time_weighting, content_type): a rollback cures them
In a profile world (simulate --profile): caused_by names a flag id of the profile,
ready_down makes the health endpoint that tells the truth say not ok, and
  failure=ID               the probe's request answers that failure shape of the profile
"""
