"""Tokens made by PyJWT (over `cryptography`) for tether-auth to verify.

    python make_cases.py OUTDIR

Makes fresh keys in OUTDIR (an HMAC secret, RSA 2048, EC P-256 and Ed25519
public keys, as the server would be given them), and OUTDIR/cases.json: a
list of cases, each

    {"name", "token", "key_file", "key_kind": "secret" | "pem" | "jwks",
     "now", "audience"?, "issuer"?, "expect": "ok" | REASON,
     "subject"?, "may_subscribe"?, "may_not_subscribe"?, "may_publish"?}

`key_file` is relative to OUTDIR; REASON names the tether_auth::Error the
token must be refused with (see verify_cases.rs). Nothing here is signed by
tether or its Rust dependencies.
"""

import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

NOW = 1_700_000_000
AUDIENCE = "tether"
ISSUER = "https://issuer.example"

# RFC 7515, Appendix A.1: a JWS with HMAC SHA-256, and its JWK (a 64-byte
# octet key). Its header and payload hold CRLFs, so the token is taken as
# printed, not made again. Its claims: iss "joe", exp 1300819380 (March
# 2011), "http://example.com/is_root": true.
RFC7515_A1_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
RFC7515_A1_K = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
RFC7515_A1_EXP = 1300819380


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def json_b64(value) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def public_pem(private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(**extra):
    c = {
        "sub": "alice",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "tether": {"sub": ["room.7", "user.{sub}.*"], "pub": ["room.7"]},
    }
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def hs256_by_hand(header: dict, payload: dict, secret: bytes) -> str:
    """HS256 over any secret bytes: PyJWT refuses a PEM as an HMAC secret,
    which is the point of the key-confusion cases."""
    signing_input = f"{json_b64(header)}.{json_b64(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)

    def write(name: str, data: bytes) -> str:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        return name

    # The keys the server is given, and the private halves that sign.
    secret = os.urandom(32).hex().encode()  # 64 bytes of text
    other_secret = os.urandom(32).hex().encode()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_other = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_other = ed25519.Ed25519PrivateKey.generate()

    algs = {
        "HS256": dict(kind="secret", file=write("hs256.secret", secret), sign=secret, other=other_secret),
        "RS256": dict(kind="pem", file=write("rs256.pub.pem", public_pem(rsa_key)), sign=rsa_key, other=rsa_other),
        "ES256": dict(kind="pem", file=write("es256.pub.pem", public_pem(ec_key)), sign=ec_key, other=ec_other),
        "EdDSA": dict(kind="pem", file=write("eddsa.pub.pem", public_pem(ed_key)), sign=ed_key, other=ed_other),
    }
    # For each key, a token of another algorithm, properly signed with that
    # algorithm's own key: only the key's pinned algorithm may pass.
    mismatched = {"HS256": "ES256", "RS256": "HS256", "ES256": "RS256", "EdDSA": "ES256"}

    cases = []

    def case(name, token, alg, expect, **extra):
        a = algs[alg]
        c = {"name": name, "token": token, "key_file": a["file"], "key_kind": a["kind"], "now": NOW, "expect": expect}
        c.update(extra)
        cases.append(c)

    for alg, a in algs.items():
        sign = lambda payload, key=a["sign"], headers=None, alg=alg: jwt.encode(  # noqa: E731
            payload, key, algorithm=alg, headers=headers
        )
        p = alg.lower()
        good = sign(claims())
        case(
            f"{p}/valid",
            good,
            alg,
            "ok",
            subject="alice",
            may_subscribe=["room.7", "user.alice.inbox"],
            may_not_subscribe=["user.bob.inbox", "room.8"],
            may_publish=["room.7"],
        )
        case(
            f"{p}/valid_with_audience_and_issuer",
            sign(claims(aud=[AUDIENCE, "other"], iss=ISSUER)),
            alg,
            "ok",
            audience=[AUDIENCE],
            issuer=[ISSUER],
            subject="alice",
        )
        case(f"{p}/wrong_key", jwt.encode(claims(), a["other"], algorithm=alg), alg, "bad_signature")
        none_token = f"{json_b64({'alg': 'none', 'typ': 'JWT'})}.{json_b64(claims())}."
        case(f"{p}/alg_none", none_token, alg, "unsupported_algorithm")
        case(f"{p}/alg_none_with_signature", none_token + good.rsplit(".", 1)[1], alg, "unsupported_algorithm")
        other = mismatched[alg]
        case(
            f"{p}/header_alg_{other.lower()}",
            jwt.encode(claims(), algs[other]["sign"], algorithm=other),
            alg,
            "algorithm_mismatch",
        )
        case(f"{p}/expired", sign(claims(exp=NOW - 60)), alg, "expired")
        case(f"{p}/expired_within_leeway", sign(claims(exp=NOW - 10)), alg, "ok")
        case(f"{p}/not_yet_valid", sign(claims(nbf=NOW + 600)), alg, "not_yet_valid")
        case(f"{p}/nbf_within_leeway", sign(claims(nbf=NOW + 10)), alg, "ok")
        case(f"{p}/wrong_audience", sign(claims(aud="other")), alg, "audience", audience=[AUDIENCE])
        case(f"{p}/audience_not_configured", sign(claims(aud=AUDIENCE)), alg, "audience")
        case(f"{p}/wrong_issuer", sign(claims(iss="https://mallory.example")), alg, "issuer", issuer=[ISSUER])
        case(f"{p}/no_issuer", sign(claims()), alg, "issuer", issuer=[ISSUER])
        header, payload, signature = good.split(".")
        case(f"{p}/truncated_in_payload", f"{header}.{payload[:10]}", alg, "malformed")
        # Cut to whole groups of four characters, so that what is left is
        # still canonical base64url: a signature too short, not bad text.
        short = signature[: len(signature) - len(signature) % 4 - 4]
        case(f"{p}/truncated_signature", f"{header}.{payload}.{short}", alg, "bad_signature")
        case(f"{p}/no_signature", f"{header}.{payload}.", alg, "bad_signature")
        tampered = json.loads(unb64(payload))
        tampered["sub"] = "mallory"
        case(f"{p}/tampered_payload", f"{header}.{json_b64(tampered)}.{signature}", alg, "bad_signature")
        widened = json.loads(unb64(payload))
        widened["tether"]["pub"] = ["*"]
        case(f"{p}/tampered_grant", f"{header}.{json_b64(widened)}.{signature}", alg, "bad_signature")

    # The classic confusion: an HS256 token whose HMAC secret is the
    # server's public key file, offered to a server that holds that key.
    for alg in ("RS256", "ES256", "EdDSA"):
        with open(os.path.join(out, algs[alg]["file"]), "rb") as f:
            pem = f.read()
        token = hs256_by_hand({"alg": "HS256", "typ": "JWT"}, claims(), pem)
        case(f"{alg.lower()}/hs256_signed_with_public_pem", token, alg, "algorithm_mismatch")

    # Claims and headers, with the HMAC key.
    hs = lambda payload, headers=None: jwt.encode(payload, secret, algorithm="HS256", headers=headers)  # noqa: E731
    case("hs256/no_exp", hs(claims(exp=None)), "HS256", "missing_expiry")
    case("hs256/iat_in_future", hs(claims(iat=NOW + 600)), "HS256", "issued_in_future")
    case("hs256/exp_as_string", hs(claims(exp=str(NOW + 600))), "HS256", "invalid_claims")
    case("hs256/tether_not_lists", hs(claims(tether={"sub": "room.7"})), "HS256", "invalid_claims")
    case("hs256/bad_pattern", hs(claims(tether={"sub": ["room*.x"]})), "HS256", "grant")
    case("hs256/sub_pattern_with_dotted_subject", hs(claims(sub="a.b")), "HS256", "grant")
    case("hs256/crit_header", hs(claims(), headers={"crit": ["exp"]}), "HS256", "critical_header")
    case("hs256/hs384", jwt.encode(claims(), secret, algorithm="HS384"), "HS256", "unsupported_algorithm")
    case("hs256/garbage_text", "not a token at all", "HS256", "malformed")
    case("hs256/garbage_parts", f"{b64(os.urandom(24))}.{b64(os.urandom(24))}.{b64(os.urandom(32))}", "HS256", "malformed")
    case("hs256/empty", "", "HS256", "malformed")
    case("hs256/four_parts", f"{hs(claims())}.e30", "HS256", "malformed")

    # The same keys as a JSON Web Key Set written by PyJWT (`to_jwk`), each
    # with a kid, and a second EC key: the key is chosen by kid, or by alg
    # when only one key of the set fits.
    def jwk(algorithm, key, kid):
        j = algorithm.to_jwk(key, as_dict=True)
        j["kid"] = kid
        return j

    jwks_file = write(
        "keys.jwks.json",
        json.dumps(
            {
                "keys": [
                    jwk(HMACAlgorithm, secret, "hs"),
                    jwk(RSAAlgorithm, rsa_key.public_key(), "rs"),
                    jwk(ECAlgorithm, ec_key.public_key(), "ec"),
                    jwk(ECAlgorithm, ec_other.public_key(), "ec-2"),
                    jwk(OKPAlgorithm, ed_key.public_key(), "ed"),
                ]
            }
        ).encode(),
    )
    kids = {"HS256": "hs", "RS256": "rs", "ES256": "ec", "EdDSA": "ed"}

    def jwks_case(name, token, expect):
        cases.append(
            {"name": name, "token": token, "key_file": jwks_file, "key_kind": "jwks", "now": NOW, "expect": expect}
        )

    for alg, kid in kids.items():
        key = algs[alg]["sign"]
        jwks_case(f"jwks/{alg.lower()}_by_kid", jwt.encode(claims(), key, algorithm=alg, headers={"kid": kid}), "ok")
        jwks_case(
            f"jwks/{alg.lower()}_unknown_kid",
            jwt.encode(claims(), key, algorithm=alg, headers={"kid": kid + "-old"}),
            "unknown_key_id",
        )
    for alg in ("HS256", "RS256", "EdDSA"):
        jwks_case(f"jwks/{alg.lower()}_no_kid_one_key_fits", jwt.encode(claims(), algs[alg]["sign"], algorithm=alg), "ok")
    jwks_case("jwks/es256_no_kid_two_keys_fit", jwt.encode(claims(), ec_key, algorithm="ES256"), "ambiguous_key")
    jwks_case(
        "jwks/es256_signed_with_the_other_ec_key",
        jwt.encode(claims(), ec_other, algorithm="ES256", headers={"kid": "ec"}),
        "bad_signature",
    )
    jwks_case(
        "jwks/es256_under_the_rsa_kid",
        jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "rs"}),
        "algorithm_mismatch",
    )
    with open(os.path.join(out, algs["RS256"]["file"]), "rb") as f:
        rsa_pem = f.read()
    jwks_case(
        "jwks/hs256_signed_with_rsa_pem_under_the_rsa_kid",
        hs256_by_hand({"alg": "HS256", "kid": "rs"}, claims(), rsa_pem),
        "algorithm_mismatch",
    )

    # RFC 7515 A.1, with its JWK in a key set. Check the copy first: the
    # HMAC of the printed signing input must be the printed signature.
    k = unb64(RFC7515_A1_K)
    signing_input, _, printed = RFC7515_A1_TOKEN.rpartition(".")
    if b64(hmac.new(k, signing_input.encode(), hashlib.sha256).digest()) != printed:
        sys.exit("make_cases.py: the RFC 7515 A.1 token does not verify with its key")
    jwks = write("rfc7515-a1.jwks.json", json.dumps({"keys": [{"kty": "oct", "k": RFC7515_A1_K}]}).encode())
    for name, now, expect in [
        ("rfc7515_a1/before_exp", RFC7515_A1_EXP - 3600, "ok"),
        ("rfc7515_a1/after_exp", RFC7515_A1_EXP + 3600, "expired"),
    ]:
        cases.append(
            {"name": name, "token": RFC7515_A1_TOKEN, "key_file": jwks, "key_kind": "jwks", "now": now, "expect": expect}
        )

    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print(f"make_cases: {len(cases)} cases in cases.json (PyJWT {jwt.__version__})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_cases.py OUTDIR")
    main(sys.argv[1])
