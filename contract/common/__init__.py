"""Infrastructure both the agent and the registry run on, kept apart from the wire contract
beside it: nothing here is seen by the other side, but each would otherwise keep a copy
(reconnect backoff, the login limiter, signals to a stop event, log set-up, durable writes
and file hashing, Argon2 passwords and secret digests, the paho connection with its
connect loop)."""
