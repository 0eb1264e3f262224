"""Footage leaving the device: export of originals with a manifest (requests come later)."""
