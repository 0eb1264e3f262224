"""`camera-agent setup`: the config file from answers to a few questions.

Asks, in the owner's language: the agent id, the registry (an enrolment code, or a broker
address), each camera's address — watched for a few seconds with `probe` as it is entered,
and said back in plain words so a wrong address can be typed again — and optionally where
each camera is. Passwords never enter config.yaml: each goes into its own file (0600) in
`<data_dir>/keys/`, beside the device key and the broker password that enrolment saves,
because the service runs as a systemd dynamic user that can read its state directory but
no root-only file in /etc (docs/service.md). The result is validated with the loader
`check` uses before it is written; an existing config is only replaced when the owner
says so, and then kept as a backup.

One module per job: `prompts` (asking, in the owner's language), `questions` (what is
asked), `probe` (the live look at each camera), `document` (the config file and the
password files), `enrolment` (joining the registry during setup) and `wizard` (the order
of it all). This file stays empty: `commands` is imported by every `camera-agent` command,
and the wizard's modules bring pydantic and PyAV along.
"""
