"""The `notifications:` section as the rest of `agent.notify` imports it; the models live
with the other sections in `agent.config.notifications`."""

from agent.config.notifications import (
    EVENT_KINDS,
    SMTP_PORTS,
    EmailSettings,
    EventKind,
    HttpUrl,
    MailAddress,
    NotificationsConfig,
    NotifySection,
    NtfySettings,
    SecretFile,
    WebhookSettings,
    read_secret,
)

__all__ = [
    "EVENT_KINDS",
    "SMTP_PORTS",
    "EmailSettings",
    "EventKind",
    "HttpUrl",
    "MailAddress",
    "NotificationsConfig",
    "NotifySection",
    "NtfySettings",
    "SecretFile",
    "WebhookSettings",
    "read_secret",
]
