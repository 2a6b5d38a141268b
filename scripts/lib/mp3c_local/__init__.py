"""mp3c_local: the local processes of mp3converter -- the tests' servers and the local stack -- driven by one table,
scripts/services.toml. Entry points (python3 scripts/lib/mp3c_local COMMAND): `stack` (scripts/stack),
`with-servers` (scripts/with-servers), `harness-ctl` (scripts/harness-ctl), and `free-ports`, which prints a free port
for each of the stack's port variables (VARIABLE=PORT lines; the browser test runs its stack on them)."""
