"""The contract between the edge agent (`agent/`) and the reference registry (`registry/`).

Both sides depend on this package, and it depends on neither: the registry imports nothing
from the agent but this (tests/whole/test_architecture.py enforces both). What one side writes
and the other reads is defined here once:

- topics.py: every MQTT topic, built and parsed back into its parts.
- audit_chain.py: the audit log's entry format and its hash.
- jws.py: compact JWS (EdDSA) and RFC 7638 key thumbprints.
- token_rules.py: the limits a request token's signer and verifier share.
- request_states.py: the states of a police request, as its status publishes them.
- strict_json.py: JSON with duplicate keys refused.
- durations.py: durations and sizes as written in either side's config.
- timestamps.py: the one RFC 3339 formatter (milliseconds in payloads and manifests).
- config/: the YAML loader with line numbers, its error wording, the shared field types
  and the broker connection settings; errors.py: the config error it raises.
- common/: shared infrastructure that is no part of the wire contract (reconnect backoff,
  the login limiter, turning signals into a stop event, log set-up, durable writes and
  file hashing, Argon2 passwords, the paho connection).
"""

# The one version of the distribution that ships both sides (pyproject.toml).
__version__ = "0.1.0"
