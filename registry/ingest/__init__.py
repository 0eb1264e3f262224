"""MQTT ingest: agents' state, health, request status and audit into the database."""
