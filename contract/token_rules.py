"""The rules of a police request token that the signer and the verifier must agree on.

Both the agent (which verifies a token, agent/police_requests/token.py) and the registry (which
signs one, registry/police/) depend on this module: its size limit, its JWS `typ` (and a
withdrawal's), the clock skew allowed between them and the kinds of request."""

from __future__ import annotations

from datetime import timedelta

# A real token is about 1 kB; anything near this is not one.
MAX_TOKEN_BYTES = 16 * 1024
TOKEN_TYPE = "camreg-request+jwt"
# A police withdrawal of a request (docs/requests.md, "Withdrawal"): the same strict
# compact JWS, sent on the same requests topic, told apart by this `typ`.
WITHDRAWAL_TYPE = "camreg-withdrawal+jwt"
# Clocks of police and device may differ this much.
CLOCK_SKEW = timedelta(seconds=60)
KINDS = ("voluntary", "order")  # what the registry prepares for an upload
# A preservation (kind `preserve`, docs/requests.md): holds its window on the device
# without any upload until its token's `exp`, then lapses by itself. The police ask for
# 14 days by default; an agent refuses one whose `exp` is more than MAX_PRESERVE after
# its `iat`, so a preservation cannot turn into keeping footage indefinitely.
PRESERVE = "preserve"
DEFAULT_PRESERVE = timedelta(days=14)
MAX_PRESERVE = timedelta(days=90)
