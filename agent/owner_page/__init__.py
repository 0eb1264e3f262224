"""The owner's local page: cameras, snapshots, footage, requests to decide and the audit log,
served by the agent itself on the local network (off by default; docs/owner-page.md).
Its password is set with auth.set_owner_password (`camera-agent owner-password`, setup)."""
