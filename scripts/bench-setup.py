#!/usr/bin/env python3
"""Makes what `tokengate bench` needs, with an implementation tokengate did not write (Python
`cryptography`): signing keys, a JWKS file, a tokengate configuration, and tokens files whose
lines carry the verdict each token must get.

    python3 scripts/bench-setup.py DIR [--alg RS256] [--tokens 1000] [--tenants 1] [--keys 1]
        [--claims-bytes 0] [--cache on|off] [--listen 127.0.0.1:50061]

Writes DIR/config.yaml, DIR/jwks.json, DIR/distinct.txt (N distinct valid tokens),
DIR/repeated.txt (one valid token), DIR/mixed.txt (valid, expired, bad signature, unknown kid).
With --tenants T, tenant i accepts issuer https://issuer-i.bench.invalid; tokens cycle over the
tenants. With --keys K, each tenant's JWKS holds K keys and tokens are signed by the last one.
"""

import argparse
import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

AUDIENCE = "bench-api"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(number: int, length: int) -> str:
    return b64(number.to_bytes(length, "big"))


class Key:
    """One signing key and its public JWK."""

    def __init__(self, alg: str, kid: str):
        self.alg, self.kid = alg, kid
        if alg in ("RS256", "PS256"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": uint(numbers.n, 256), "e": uint(numbers.e, 3)}
        elif alg in ("ES256", "ES384"):
            curve, size = (ec.SECP256R1(), 32) if alg == "ES256" else (ec.SECP384R1(), 48)
            self.size = size
            self.private = ec.generate_private_key(curve)
            numbers = self.private.public_key().public_numbers()
            crv = "P-256" if alg == "ES256" else "P-384"
            self.jwk = {"kty": "EC", "crv": crv, "x": uint(numbers.x, size), "y": uint(numbers.y, size)}
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        elif alg == "HS256":
            self.secret = os.urandom(32)
            self.jwk = {"kty": "oct", "k": b64(self.secret)}
        else:
            sys.exit(f"unsupported --alg {alg}")
        self.jwk.update({"kid": kid, "alg": alg, "use": "sig"})

    def sign(self, message: bytes) -> bytes:
        if self.alg == "RS256":
            return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return self.private.sign(message, pss, hashes.SHA256())
        if self.alg in ("ES256", "ES384"):
            digest = hashes.SHA256() if self.alg == "ES256" else hashes.SHA384()
            der = self.private.sign(message, ec.ECDSA(digest))
            r, s = utils.decode_dss_signature(der)
            return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")
        if self.alg == "EdDSA":
            return self.private.sign(message)
        mac = hmac.HMAC(self.secret, hashes.SHA256())
        mac.update(message)
        return mac.finalize()


def token(key: Key, claims: dict, kid: str | None = None) -> str:
    header = {"alg": key.alg, "typ": "JWT", "kid": kid or key.kid}
    signing_input = (
        b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + b64(key.sign(signing_input.encode()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--alg", default="RS256")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--claims-bytes", type=int, default=0, help="pad each token's claims")
    parser.add_argument("--cache", choices=["on", "off", "omit"], default="on",
                        help="omit: write no cache block (for builds that predate it)")
    parser.add_argument("--max-entries", type=int, default=100000)
    parser.add_argument("--listen", default="127.0.0.1:50061")
    parser.add_argument("--metrics-listen", default="127.0.0.1:9461")
    parser.add_argument("--forward-auth-listen", default="127.0.0.1:8461")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    tenants = []
    for t in range(args.tenants):
        keys = [Key(args.alg, f"key-{t}-{k}") for k in range(args.keys)]
        tenants.append((f"https://issuer-{t}.bench.invalid", keys))

    lines = [
        "# Made by scripts/bench-setup.py: a benchmark configuration, not for production.",
        f'listen: "{args.listen}"',
        f'metrics_listen: "{args.metrics_listen}"',
        f"max_batch_size: 10000",
        "ext_authz:",
        f'  forward_auth_listen: "{args.forward_auth_listen}"',
        "  claims_to_headers: { sub: x-jwt-sub }",
    ]
    if args.cache != "omit":
        lines += [
            "cache:",
            f"  enabled: {'true' if args.cache == 'on' else 'false'}",
            f"  max_entries: {args.max_entries}",
        ]
    lines += ["tenants:"]
    for t, (issuer, keys) in enumerate(tenants):
        jwks_name = f"jwks-{t}.json"
        with open(os.path.join(args.dir, jwks_name), "w") as out:
            json.dump({"keys": [key.jwk for key in keys]}, out)
        lines += [
            f"  - id: tenant-{t}",
            f'    issuers: ["{issuer}"]',
            f'    audiences: ["{AUDIENCE}"]',
            f"    jwks_file: {jwks_name}",
        ]
        if args.alg == "HS256":
            lines.append(f"    algorithms: [HS256]")
    with open(os.path.join(args.dir, "config.yaml"), "w") as out:
        out.write("\n".join(lines) + "\n")

    now = int(time.time())
    padding_claim = "x" * args.claims_bytes

    def claims(t: int, n: int, exp: int) -> dict:
        body = {
            "iss": tenants[t][0],
            "aud": AUDIENCE,
            "sub": f"user-{n}",
            "iat": now - 60,
            "exp": exp,
            "scp": "read write",
        }
        if padding_claim:
            body["pad"] = padding_claim
        return body

    def signer(t: int) -> Key:
        return tenants[t][1][-1]

    lifetime = now + 24 * 3600
    distinct = [token(signer(n % args.tenants), claims(n % args.tenants, n, lifetime))
                for n in range(args.tokens)]
    with open(os.path.join(args.dir, "distinct.txt"), "w") as out:
        out.writelines(f"valid {value}\n" for value in distinct)
    with open(os.path.join(args.dir, "repeated.txt"), "w") as out:
        out.write(f"valid {distinct[0]}\n")
    good = token(signer(0), claims(0, 1, lifetime))
    head, body, signature = good.split(".")
    flipped = "B" if signature[10] == "A" else "A"
    forged = f"{head}.{body}.{signature[:10]}{flipped}{signature[11:]}"
    with open(os.path.join(args.dir, "mixed.txt"), "w") as out:
        out.write(f"valid {good}\n")
        out.write(f"expired {token(signer(0), claims(0, 2, now - 3600))}\n")
        out.write(f"invalid_signature {forged}\n")
        out.write(f"unknown_key {token(signer(0), claims(0, 3, lifetime), kid='nobody')}\n")
    print(f"wrote {args.dir}: config.yaml, {args.tenants} JWKS file(s), "
          f"{len(distinct)} distinct tokens ({args.alg}, {len(distinct[0])} bytes each)")


if __name__ == "__main__":
    main()
