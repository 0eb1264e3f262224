"""Notifications to the owner: e-mail, a webhook or ntfy push, rate-limited, with a digest.

Imports nothing at package level: `agent.config` imports `agent.notify.config`, and the
rest of the package imports `agent.config`."""
