"""Independent checks of the manifest format, so we are not only agreeing with ourselves.

(a) securesystemslib's DSSE implementation verifies our envelope and refuses a tampered one;
(b) the in-toto attestation framework's own Statement/ResourceDescriptor bindings
    (PyPI ``in-toto-attestation``) parse and validate our statement, plus the v1 spec rules
    those bindings do not enforce (lowercase hex digests, URI types, object predicate);
(c) our keyid is what openssl computes from the public key;
(d) our PAE is byte for byte the encoding the DSSE protocol documents.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from bot import manifest
from tests.conftest import IN_CI

PREDICATE = {
    "repository": "acme/agents",
    "plugin": {"name": "plugin-weather", "path": "plugins/plugin-weather"},
    "job": {"id": "j-1"},
}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    files = {
        "package.json": '{"name": "plugin-weather"}\n',
        "src/index.ts": "export default {};\n",
        "test-results.json": '{"passed": 1, "failed": 0}\n',
        "docs/ünïcode name.md": "# hi\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def signed(plugin: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    return manifest.sign_statement(manifest.build_statement(plugin, PREDICATE), key)


def sslib_key(key: Ed25519PrivateKey) -> SSlibKey:
    public = key.public_key()
    return SSlibKey.from_crypto(public, keyid=manifest.keyid_of(public))


# ------------------------------------------------------------ (a) securesystemslib DSSE


def test_securesystemslib_verifies_our_envelope(plugin: Path, key: Ed25519PrivateKey) -> None:
    data = signed(plugin, key)
    envelope = Envelope.from_dict(copy.deepcopy(data))
    assert envelope.payload_type == manifest.PAYLOAD_TYPE
    accepted = envelope.verify([sslib_key(key)], 1)
    assert set(accepted) == {manifest.keyid_of(key.public_key())}
    # Its PAE is ours, and it reads back exactly the envelope we wrote.
    assert envelope.pae() == manifest.pae(manifest.PAYLOAD_TYPE, envelope.payload)
    assert envelope.to_dict() == data


def test_securesystemslib_verifies_the_written_file(plugin: Path, key: Ed25519PrivateKey) -> None:
    path = manifest.write_manifest(plugin, PREDICATE, key)
    envelope = Envelope.from_dict(json.loads(path.read_text()))
    envelope.verify([sslib_key(key)], 1)


def test_securesystemslib_refuses_a_tampered_payload(plugin: Path, key: Ed25519PrivateKey) -> None:
    data = signed(plugin, key)
    statement = json.loads(base64.b64decode(data["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    data["payload"] = base64.b64encode(manifest.canonical_json(statement)).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(data).verify([sslib_key(key)], 1)


def test_securesystemslib_refuses_a_changed_payload_type(
    plugin: Path, key: Ed25519PrivateKey
) -> None:
    data = signed(plugin, key)
    data["payloadType"] = "application/json"
    with pytest.raises(VerificationError):
        Envelope.from_dict(data).verify([sslib_key(key)], 1)


def test_securesystemslib_refuses_another_key(plugin: Path, key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    # Same keyid as the signature, wrong key material: the signature must not verify.
    impostor = SSlibKey.from_crypto(other.public_key(), keyid=manifest.keyid_of(key.public_key()))
    with pytest.raises(VerificationError):
        Envelope.from_dict(signed(plugin, key)).verify([impostor], 1)


# ------------------------------------------------------------- (b) in-toto Statement v1

HEX = re.compile(r"[0-9a-f]+")


def parse_statement(payload: bytes) -> Statement:
    # Strict: an unknown top-level field is an error, not silently dropped.
    pb = json_format.Parse(payload, statement_pb2.Statement())  # type: ignore[attr-defined]
    return Statement.copy_from_pb(pb)


def assert_v1_rules(statement: dict[str, Any]) -> None:
    """The Statement v1 rules the bindings' validate() leaves out."""
    assert set(statement) == {"_type", "subject", "predicateType", "predicate"}
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    subjects = statement["subject"]
    assert isinstance(subjects, list) and subjects
    for subject in subjects:
        assert isinstance(subject["name"], str) and subject["name"]
        digest = subject["digest"]
        assert isinstance(digest, dict) and digest
        for algorithm, value in digest.items():
            assert algorithm == algorithm.lower()
            # Lowercase hex, and for sha256 the right length.
            assert HEX.fullmatch(value), (algorithm, value)
        assert len(digest["sha256"]) == 64
    names = [s["name"] for s in subjects]
    assert len(names) == len(set(names))
    parsed = urlparse(statement["predicateType"])
    assert parsed.scheme in {"http", "https"} and parsed.netloc
    assert isinstance(statement["predicate"], dict)


def test_statement_passes_the_attestation_framework(plugin: Path, key: Ed25519PrivateKey) -> None:
    payload = base64.b64decode(signed(plugin, key)["payload"])
    statement = parse_statement(payload)
    statement.validate()
    assert statement.pb.type == "https://in-toto.io/Statement/v1"
    assert statement.pb.predicate_type == manifest.PREDICATE_TYPE
    names = {s.name: dict(s.digest) for s in statement.pb.subject}
    assert set(names) == {
        "package.json",
        "src/index.ts",
        "test-results.json",
        "docs/ünïcode name.md",
    }
    expected = hashlib.sha256((plugin / "src/index.ts").read_bytes()).hexdigest()
    assert names["src/index.ts"] == {"sha256": expected}
    # The framework's JSON is the same document we signed.
    back = json_format.MessageToDict(statement.pb, preserving_proto_field_name=False)
    assert back == json.loads(payload)
    assert_v1_rules(json.loads(payload))


def test_payload_is_canonical_json(plugin: Path, key: Ed25519PrivateKey) -> None:
    payload = base64.b64decode(signed(plugin, key)["payload"])
    decoded = json.loads(payload.decode("utf-8"))
    assert payload == json.dumps(
        decoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


@pytest.mark.parametrize(
    "breakage",
    [
        lambda s: s.update({"_type": "https://in-toto.io/Statement/v0.1"}),
        lambda s: s.update({"subject": []}),
        lambda s: s["subject"][0].pop("digest"),
        lambda s: s.update({"predicateType": ""}),
        lambda s: s.update({"predicate": {}}),
    ],
    ids=["old-type", "no-subject", "no-digest", "no-predicate-type", "empty-predicate"],
)
def test_the_framework_check_can_fail(plugin: Path, breakage: Any) -> None:
    # The validation above is worth something only if it rejects broken statements.
    statement = manifest.build_statement(plugin, PREDICATE)
    breakage(statement)
    with pytest.raises(ValueError):
        parse_statement(manifest.canonical_json(statement)).validate()


def test_the_framework_parser_refuses_unknown_fields(plugin: Path) -> None:
    statement = manifest.build_statement(plugin, PREDICATE)
    statement["extra"] = 1
    with pytest.raises(json_format.ParseError):
        parse_statement(manifest.canonical_json(statement))


# ------------------------------------------------------------------- (c) keyid, openssl


@pytest.mark.skipif(
    not IN_CI and shutil.which("openssl") is None, reason="openssl is not installed"
)
def test_keyid_is_what_openssl_computes(key: Ed25519PrivateKey) -> None:
    pem = manifest.public_pem(key.public_key())
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=pem.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    if shutil.which("sha256sum"):
        digest = (
            subprocess.run(["sha256sum"], input=der, capture_output=True, check=True, timeout=30)
            .stdout.split()[0]
            .decode()
        )
    else:
        digest = hashlib.sha256(der).hexdigest()
    assert digest == manifest.keyid_of(key.public_key())
    assert manifest.key_entry(key.public_key())["keyid"] == digest


# ------------------------------------------------------------------------- (d) DSSE PAE


def test_pae_matches_the_dsse_spec_example() -> None:
    # The test vector of the DSSE protocol document (protocol.md, "Test Vectors").
    encoded = manifest.pae("http://example.com/HelloWorld", b"hello world")
    assert encoded == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert encoded.hex(" ") == (
        "44 53 53 45 76 31 20 32 39 20 68 74 74 70 3a 2f 2f 65 78 61 6d 70 6c 65 2e 63 6f 6d"
        " 2f 48 65 6c 6c 6f 57 6f 72 6c 64 20 31 31 20 68 65 6c 6c 6f 20 77 6f 72 6c 64"
    )


def test_pae_lengths_are_byte_lengths_in_decimal() -> None:
    # LEN(s) is the ASCII decimal byte length, with no leading zeros; UTF-8 counts bytes.
    assert manifest.pae("t", b"") == b"DSSEv1 1 t 0 "
    assert manifest.pae("é", b"\x00\xff") == b"DSSEv1 2 \xc3\xa9 2 \x00\xff"
    body = b"x" * 1234
    assert manifest.pae(manifest.PAYLOAD_TYPE, body) == (
        b"DSSEv1 28 application/vnd.in-toto+json 1234 " + body
    )


def test_signature_covers_the_pae_not_the_payload(key: Ed25519PrivateKey, plugin: Path) -> None:
    data = signed(plugin, key)
    payload = base64.b64decode(data["payload"])
    sig = base64.b64decode(data["signatures"][0]["sig"])
    key.public_key().verify(sig, manifest.pae(manifest.PAYLOAD_TYPE, payload))
