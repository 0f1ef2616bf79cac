"""The signed manifest of a plugin directory: a DSSE envelope over an in-toto Statement v1.

The statement's subjects are every other file of the directory (POSIX path relative to
it, sha256); its predicate records how the plugin was made. The envelope is signed with
Ed25519 over the DSSE pre-authentication encoding; keyid is the hex sha256 of the public
key's DER SubjectPublicKeyInfo, so anyone can recompute it with openssl.

This module needs only the standard library and ``cryptography``: repositories that
install the bot run it as their verifier (``python verify_manifest.py verify DIR``),
taken from their base branch, without installing the bot. Names are checked by the bot's
one path rule, ``bot/paths.py``, which travels beside the verifier as ``plugin_paths.py``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PATHS_MODULE = "plugin_paths.py"  # bot/paths.py, beside the standalone verifier


def _sibling_paths_module() -> ModuleType:
    """The path rule of the standalone verifier: ``plugin_paths.py`` in its own folder."""
    import importlib.util

    location = Path(__file__).resolve().with_name(PATHS_MODULE)
    spec = importlib.util.spec_from_file_location("plugin_paths", location)
    if spec is None or spec.loader is None or not location.is_file():
        raise SystemExit(f"{location} is missing: the verifier needs the bot's path rule")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING or __package__ == "bot":
    from bot import paths as _paths
else:  # the standalone verifier
    _paths = _sibling_paths_module()

MANIFEST_FILE = "plugin-manifest.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/plugin-bot/attestations/plugin-build/v1"
KEY_STATUSES = ("active", "retired", "revoked")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


class ManifestError(Exception):
    """The manifest could not be made or checked; the message says what and where."""


class VerificationError(ManifestError):
    """Verification failed; ``reason`` is a short code, the message the details."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


# ------------------------------------------------------------------------- encodings


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def keyid_of(public_key: Ed25519PublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# ------------------------------------------------------------------------------ files


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def directory_files(root: Path) -> dict[str, Path]:
    """Every file under ``root`` but the manifest, by POSIX path; refuses anything else."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            mode = path.lstat().st_mode
            rel = PurePosixPath(path.relative_to(root)).as_posix()
            try:
                _paths.check_relative(rel)
            except _paths.PathRefused as exc:
                raise VerificationError("bad-name", f"{rel!r} is refused: {exc}") from None
            if stat.S_ISLNK(mode):
                raise VerificationError("symlink", f"{rel} is a symlink")
            if name in filenames and not stat.S_ISREG(mode):
                raise VerificationError("not-a-file", f"{rel} is not a regular file")
            if name in filenames and rel != MANIFEST_FILE:
                found[rel] = path
    return found


def subjects_of(root: Path, files: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """in-toto subjects for ``files`` (default: every file) of ``root``, sorted by name."""
    if files is None:
        listed = directory_files(root)
    else:
        listed = {}
        for name in files:
            path = root / _check_subject_name(name)
            mode = path.lstat().st_mode
            parents = PurePosixPath(name).parents
            if any((root / p).is_symlink() for p in parents if str(p) != "."):
                raise VerificationError("symlink", f"{name} is below a symlink")
            if not stat.S_ISREG(mode):
                raise VerificationError("not-a-file", f"{name} is not a regular file")
            listed[name] = path
    return [
        {"name": name, "digest": {"sha256": _sha256_file(listed[name])}}
        for name in sorted(listed)
        if name != MANIFEST_FILE
    ]


def _check_subject_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise VerificationError("bad-subject", f"subject name {name!r} is not a path")
    try:
        _paths.check_relative(name)
    except _paths.PathRefused as exc:
        raise VerificationError("bad-subject", f"subject {name!r} is refused: {exc}") from None
    return name


# ----------------------------------------------------------------------------- signing


def build_statement(
    root: Path, predicate: Mapping[str, Any], files: Iterable[str] | None = None
) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects_of(root, files),
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def sign_statement(statement: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    payload = canonical_json(statement)
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {
                "keyid": keyid_of(private_key.public_key()),
                "sig": base64.b64encode(signature).decode(),
            }
        ],
    }


def write_manifest(
    root: Path,
    predicate: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    files: Iterable[str] | None = None,
) -> Path:
    """Sign every file of ``root`` (or ``files``) and write the envelope beside them."""
    envelope = sign_statement(build_statement(root, predicate, files), private_key)
    path = root / MANIFEST_FILE
    path.write_text(json.dumps(envelope, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class TrustedKey:
    keyid: str
    public_key: Ed25519PublicKey
    status: str


def load_keys(path: Path) -> list[TrustedKey]:
    """The keys file: a JSON list of ``{keyid, public_key_pem, status}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the keys file {path}: {exc}") from None
    if not isinstance(data, list):
        raise ManifestError(f"{path}: the keys file must be a JSON list")
    keys: list[TrustedKey] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data):
        where = f"{path}[{index}]"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: must be an object")
        status = entry.get("status")
        if status not in KEY_STATUSES:
            raise ManifestError(f"{where}: status must be one of {', '.join(KEY_STATUSES)}")
        try:
            public_key = serialization.load_pem_public_key(str(entry["public_key_pem"]).encode())
        except (KeyError, ValueError) as exc:
            raise ManifestError(
                f"{where}: public_key_pem is not a PEM public key ({exc})"
            ) from None
        if not isinstance(public_key, Ed25519PublicKey):
            raise ManifestError(f"{where}: only Ed25519 keys are accepted")
        keyid = keyid_of(public_key)
        if entry.get("keyid") != keyid:
            raise ManifestError(f"{where}: keyid does not match the key (expected {keyid})")
        # One status per key: a key listed twice (say revoked and active) is ambiguous.
        if keyid in first_index:
            raise ManifestError(
                f"{where}: keyid {keyid} is already listed at [{first_index[keyid]}]; "
                "list each key once, with one status"
            )
        first_index[keyid] = index
        keys.append(TrustedKey(keyid, public_key, status))
    return keys


def key_entry(public_key: Ed25519PublicKey, status: str = "active") -> dict[str, str]:
    return {
        "keyid": keyid_of(public_key),
        "public_key_pem": public_pem(public_key),
        "status": status,
    }


def generate_key(out_dir: Path, passphrase: bytes | None = None) -> tuple[Path, dict[str, str]]:
    """A new Ed25519 key as PKCS#8 PEM (mode 0600) and its keys-file entry."""
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    entry = key_entry(key.public_key())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"plugin-bot-signing-{entry['keyid'][:16]}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path, entry


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise ManifestError(f"cannot load the signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ManifestError(f"{path} is not an Ed25519 private key")
    return key


# ------------------------------------------------------------------------ verification


@dataclass(frozen=True)
class Verified:
    statement: dict[str, Any]
    keyid: str
    key_status: str
    checked: list[str] = field(default_factory=list)


def _read_envelope(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_FILE
    if path.is_symlink() or not path.is_file():
        raise VerificationError("no-manifest", f"{root} has no {MANIFEST_FILE}")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise VerificationError("malformed", f"{MANIFEST_FILE} is too large")
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise VerificationError("malformed", f"{MANIFEST_FILE} is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise VerificationError("malformed", f"{MANIFEST_FILE} is not a DSSE envelope")
    return envelope


def check_signature(
    envelope: Mapping[str, Any],
    payload: bytes,
    keys: Sequence[TrustedKey],
    allow_retired: bool = False,
) -> TrustedKey:
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise VerificationError("unsigned", "the envelope has no signatures")
    message = pae(PAYLOAD_TYPE, payload)
    refused: list[str] = []
    for signature in signatures:
        try:
            raw = base64.b64decode(str(signature.get("sig", "")), validate=True)
        except (ValueError, AttributeError):
            continue
        hint = signature.get("keyid") if isinstance(signature, dict) else None
        # The keyid is only a hint: try its key first, then every other.
        for key in sorted(keys, key=lambda k: k.keyid != hint):
            try:
                key.public_key.verify(raw, message)
            except InvalidSignature:
                continue
            if key.status == "active" or (key.status == "retired" and allow_retired):
                return key
            refused.append(f"{key.keyid[:16]}… is {key.status}")
    if refused:
        raise VerificationError(
            "untrusted-key", "signed only by a key that may not sign: " + "; ".join(refused)
        )
    raise VerificationError("bad-signature", "no signature verifies with a key of the keys file")


def verify_manifest(
    root: Path,
    keys: Sequence[TrustedKey],
    *,
    repository: str | None = None,
    plugin_path: str | None = None,
    allow_retired: bool = False,
    base_commit: str | None = None,
    branch: str | None = None,
    previous_version: str | None = None,
) -> Verified:
    """Check the manifest of ``root``; raise VerificationError at the first failure.

    ``base_commit`` and ``branch`` bind the statement to one pull request;
    ``previous_version`` (the version signed on the base branch) must be older.
    """
    checked: list[str] = []
    envelope = _read_envelope(root)
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise VerificationError(
            "payload-type", f"payloadType is {envelope.get('payloadType')!r}, not {PAYLOAD_TYPE}"
        )
    checked.append(f"payloadType is {PAYLOAD_TYPE}")
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except ValueError:
        raise VerificationError("malformed", "the payload is not base64") from None
    key = check_signature(envelope, payload, keys, allow_retired)
    checked.append(f"signed by {key.status} key {key.keyid}")
    try:
        statement = json.loads(payload)
    except ValueError:
        raise VerificationError("malformed", "the payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError("statement-type", f"_type is not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError("predicate-type", f"predicateType is not {PREDICATE_TYPE}")
    checked.append("in-toto Statement v1 of a plugin build")
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        raise VerificationError("bad-subject", "the statement has no subject list")
    claimed: dict[str, str] = {}
    for subject in subjects:
        if not isinstance(subject, dict):
            raise VerificationError("bad-subject", "a subject is not an object")
        name = _check_subject_name(subject.get("name"))
        digest = subject.get("digest")
        if not isinstance(digest, dict) or not isinstance(digest.get("sha256"), str):
            raise VerificationError("bad-subject", f"subject {name} has no sha256 digest")
        if name in claimed:
            raise VerificationError("bad-subject", f"subject {name} is listed twice")
        claimed[name] = digest["sha256"]
    present = directory_files(root)
    missing = sorted(set(claimed) - set(present))
    extra = sorted(set(present) - set(claimed))
    if missing:
        raise VerificationError("missing-file", f"missing from the directory: {', '.join(missing)}")
    if extra:
        raise VerificationError("extra-file", f"not covered by the manifest: {', '.join(extra)}")
    checked.append(f"the {len(present)} files of the directory are exactly the subjects")
    for name in sorted(claimed):
        if _sha256_file(present[name]) != claimed[name]:
            raise VerificationError("digest-mismatch", f"{name} does not match its sha256")
    checked.append("every sha256 matches")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise VerificationError("predicate", "the statement has no predicate")
    if repository is not None and predicate.get("repository") != repository:
        raise VerificationError(
            "wrong-repository",
            f"made for repository {predicate.get('repository')!r}, not {repository!r}",
        )
    if plugin_path is not None:
        plugin = predicate.get("plugin")
        made_for = plugin.get("path") if isinstance(plugin, dict) else None
        if made_for != plugin_path:
            raise VerificationError(
                "wrong-path", f"made for plugin path {made_for!r}, not {plugin_path!r}"
            )
    if repository is not None or plugin_path is not None:
        checked.append("repository and plugin path are the expected ones")
    checked += _check_binding(predicate, base_commit=base_commit, branch=branch)
    if previous_version is not None:
        checked.append(_check_newer(predicate, previous_version))
    return Verified(statement, key.keyid, key.status, checked)


def _check_binding(
    predicate: Mapping[str, Any], *, base_commit: str | None, branch: str | None
) -> list[str]:
    """The statement was made for this pull request: its base commit and its branch."""
    checked: list[str] = []
    if base_commit is not None:
        made_from = predicate.get("baseCommit")
        if made_from != base_commit:
            raise VerificationError(
                "wrong-base",
                f"made from base commit {made_from!r}, but the pull request starts from "
                f"{base_commit!r} (a replayed or rebased statement)",
            )
        checked.append(f"made from the pull request's base commit {base_commit}")
    if branch is not None:
        made_on = predicate.get("branch")
        if made_on != branch:
            raise VerificationError(
                "wrong-branch", f"made for branch {made_on!r}, not the pull request's {branch!r}"
            )
        checked.append(f"made for the pull request's branch {branch}")
    return checked


def version_key(version: Any) -> tuple[int, int, int, int, tuple[str, ...]]:
    """A semver version as something to compare (a release sorts after its pre-releases)."""
    text = str(version)
    core, _, pre = text.split("+", 1)[0].partition("-")
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise VerificationError("bad-version", f"{text!r} is not a semver version")
    major, minor, patch = (int(p) for p in parts)
    return (major, minor, patch, 0 if pre else 1, tuple(pre.split(".")) if pre else ())


def _check_newer(predicate: Mapping[str, Any], previous: str) -> str:
    plugin = predicate.get("plugin")
    version = plugin.get("version") if isinstance(plugin, dict) else None
    if version_key(version) <= version_key(previous):
        raise VerificationError(
            "version-regression",
            f"version {version} is not newer than {previous}, the signed version on the base "
            "branch (an older or replayed plugin)",
        )
    return f"version {version} is newer than the base branch's {previous}"


def signed_version(root: Path) -> str:
    """The plugin version in the manifest of ``root`` (a trusted copy: not re-verified)."""
    envelope = _read_envelope(root)
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("payload", "")), validate=True))
        return str(statement["predicate"]["plugin"]["version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError("malformed", f"cannot read the signed version: {exc}") from None


# -------------------------------------------------------------- standalone verifier CLI


def _subject_names(envelope: Mapping[str, Any]) -> list[str]:
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("payload", "")), validate=True))
        subjects = statement["subject"]
        return [_check_subject_name(s["name"]) for s in subjects]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError("malformed", f"cannot read the subjects: {exc}") from None


def add_verify_arguments(parser: argparse.ArgumentParser, keys: Path | None = None) -> None:
    """The arguments of a ``verify`` command (this script's and ``plugin-bot verify``)."""
    parser.add_argument("dir", type=Path)
    parser.add_argument(
        "--keys", type=Path, default=keys, required=keys is None, help="the trusted keys file"
    )
    parser.add_argument("--repository", help="the repository the plugin must be made for")
    parser.add_argument("--plugin-path", help="the path the plugin must be made for")
    parser.add_argument("--allow-retired", action="store_true", help="accept retired keys")
    parser.add_argument("--base-commit", help="the commit the statement must be made from")
    parser.add_argument("--branch", help="the branch the statement must be made for")
    parser.add_argument(
        "--previous",
        type=Path,
        help="the plugin's directory as on the base branch: its signed version must be older",
    )


def verify_from_args(args: argparse.Namespace) -> Verified:
    previous = getattr(args, "previous", None)
    return verify_manifest(
        args.dir,
        load_keys(args.keys),
        repository=args.repository,
        plugin_path=args.plugin_path,
        allow_retired=args.allow_retired,
        base_commit=getattr(args, "base_commit", None),
        branch=getattr(args, "branch", None),
        previous_version=signed_version(previous) if previous is not None else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a plugin-bot manifest.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_verify_arguments(sub.add_parser("verify"))
    listing = sub.add_parser("subjects", help="print the manifest's subjects, one per line")
    listing.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "subjects":
            # Unverified: meaningful only after `verify` passed on the same directory.
            for name in _subject_names(_read_envelope(args.dir)):
                print(name)
            return 0
        result = verify_from_args(args)
    except ManifestError as exc:
        print(f"FAIL {args.dir}: {exc}", file=sys.stderr)
        return 1
    for line in result.checked:
        print(f"ok  {line}")
    print(f"VERIFIED {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
