"""The simulated analyticbot service: real local processes that behave like the real one.

``rollback-console simulate`` (console/cli/simulate.py) builds and runs it; tests and
drills use :class:`console.simulator.world.Simulation` directly. ``simulate --profile
FILE`` simulates the service another profile describes instead
(:class:`console.simulator.generic_world.ProfileSimulation`).

Modules, by meaning:
  world       Simulation: lays out DIR, starts everything, writes DIR/console.toml
  homes       one simulated host's home (SimHost) and how it is laid out
  state       DIR's lock and state.json; faults by directory (``rollback-console fault``)
  configfile  the env file and console.toml texts
  service     the fake API process (``python -m console.simulator.service --home HOME``)
  settings    its settings (read once from its environment) and its log formats
  httpserver  a small HTTP/1.1 server on asyncio streams
  auth        password hash check and HS256 bearer tokens
  analytics   the best-times computation, as SQL and as its synthetic twin
  dataset     the simulated channel's posts
  memory      real resident memory for the memory fault
  faults      faults injected while it runs (HOME/faults.json)
  ctl         start/stop/restart/… of one home (the restart/pid/… commands of the config)
  database    schema, migrations 004/005 and their rollback scripts
  postgres    a throwaway PostgreSQL cluster
  repo        the app checkout (git) holding the Phase 4 commit
  guard       a watchdog that cleans up when its owner dies abnormally

Any profile's service, from the profile alone:
  generic_world   ProfileSimulation: the same layout for the profile's service, no database
  generic_config  its env files (the profile's flags) and console.toml (profile = FILE)
  generic         its process (``python -m console.simulator.generic --home HOME``)
  answers         JSON answers generated from the profile's predicates

Nothing is imported here, so that starting the service process stays cheap.
"""
