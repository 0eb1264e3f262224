"""Ed25519 keys and compact JWS: police request tokens in, signed manifests out."""
