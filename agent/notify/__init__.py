"""Notifications to the owner: e-mail, a webhook or ntfy push, rate-limited, with a digest.

Imports nothing at package level. The `notifications:` config section lives with the other
sections in `agent.config`; `agent.notify.config` re-exports it for this package."""
