"""The police side: signing keys kept off the server, claims to sign, camera search."""
