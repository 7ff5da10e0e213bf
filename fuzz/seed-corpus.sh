#!/usr/bin/env bash
# Rebuilds the committed seed corpus of every fuzz target (fuzz/seeds/<target>/) from the test
# fixtures and the Project Wycheproof vectors in tests/data (Apache 2.0, see their licence).
# Run from the repository root: bash fuzz/seed-corpus.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
corpus="$root/fuzz/seeds"
rm -rf "$corpus" && mkdir -p "$corpus"/{token_parse,validate,jwks_parse,json_object,config_parse,discovery,pem_keys}
tokengate() { cargo run -q --manifest-path "$root/Cargo.toml" -- "$@"; }
# Tokens: demo tokens (valid, expired, other claims) and every Wycheproof JWS.
tokengate mint >"$corpus/validate/valid"
tokengate mint --expired >"$corpus/validate/expired"
tokengate mint --scope write --claim roles='["a","b"]' >"$corpus/validate/claims"
cp "$corpus"/validate/* "$corpus/token_parse/"
python3 - "$root" "$corpus" <<'PY'
import json, sys, base64, os, hashlib
root, corpus = sys.argv[1], sys.argv[2]
vectors = json.load(open(f"{root}/tests/data/wycheproof/json_web_signature_test.json"))
n = 0
for group in vectors["testGroups"]:
    for test in group["tests"]:
        jws = test.get("jws")
        if isinstance(jws, str) and n < 40:
            open(f"{corpus}/token_parse/wycheproof-{test['tcId']}", "w").write(jws)
            n += 1
        for part in (jws.split(".")[:2] if isinstance(jws, str) else []):
            try:
                decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
                json.loads(decoded)
            except Exception:
                continue
            name = hashlib.sha256(decoded).hexdigest()[:16]
            if len(os.listdir(f"{corpus}/json_object")) < 30:
                open(f"{corpus}/json_object/{name}", "wb").write(decoded)
    for key in ("private", "public", "key"):
        jwk = group.get(key)
        if isinstance(jwk, dict):
            name = f"{corpus}/jwks_parse/{group.get('type', 'group')}-{len(os.listdir(corpus + '/jwks_parse'))}"
            open(name, "w").write(json.dumps({"keys": [jwk]}))
for name, document in {
    "plain": {"issuer": "http://127.0.0.1:8080", "jwks_uri": "http://127.0.0.1:8080/jwks"},
    "remote": {"issuer": "https://idp.example", "jwks_uri": "https://idp.example/keys", "id_token_signing_alg_values_supported": ["RS256"]},
    "template": {"issuer": "https://login.example/{tenantid}/v2.0", "jwks_uri": "http://127.0.0.1:6379/"},
}.items():
    open(f"{corpus}/discovery/{name}", "w").write(json.dumps(document))
PY
# Configurations: the embedded default and the deploy example.
tokengate demo-config >"$corpus/config_parse/demo.yaml"
cp "$root/deploy/tokengate.example.yaml" "$corpus/config_parse/example.yaml"
# PEM: public keys and a certificate of the fixture keys (openssl, not tokengate).
for key in rsa2048-a ec-p256 ed25519; do
  openssl pkey -in "$root/tests/data/$key.pem" -pubout -out "$corpus/pem_keys/$key.pub" 2>/dev/null
done
openssl req -x509 -key "$root/tests/data/rsa2048-a.pem" -subj /CN=signer -days 1 -out "$corpus/pem_keys/rsa.crt" 2>/dev/null
openssl rsa -in "$root/tests/data/rsa2048-a.pem" -RSAPublicKey_out -out "$corpus/pem_keys/rsa.pkcs1" 2>/dev/null
echo "seed corpus: $(find "$corpus" -type f | wc -l) files in $(ls "$corpus" | wc -l) targets"
