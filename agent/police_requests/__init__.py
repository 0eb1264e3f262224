"""Police requests for footage: verify the token, consent, hold, export, upload, audit."""
