"""The reference registry: health ingest, dashboard and map, police search and signed
requests, evidence intake. The counterpart of the edge agent in `agent/`."""
