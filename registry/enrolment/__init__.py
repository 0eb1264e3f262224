"""Enrolment: one-time codes, an agent's device key and cameras in, broker credentials out."""
