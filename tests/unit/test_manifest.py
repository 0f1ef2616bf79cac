"""The signed manifest: format, verification, keys over time, and the tamper suite."""

import base64
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.cli import main
from bot.manifest import (
    MANIFEST_FILE,
    PAYLOAD_TYPE,
    STATEMENT_TYPE,
    ManifestError,
    TrustedKey,
    VerificationError,
    canonical_json,
    key_entry,
    keyid_of,
    load_keys,
    load_private_key,
    pae,
    sign_statement,
    verify_manifest,
    write_manifest,
)

REPO = "acme/agents"
PATH = "plugins/plugin-weather"
PREDICATE = {"repository": REPO, "plugin": {"name": "plugin-weather", "path": PATH}, "job": {}}
FILES = {
    "package.json": '{"name": "plugin-weather"}\n',
    "src/index.ts": "export default {};\n",
    "__tests__/plugin.test.ts": "it('works', () => {});\n",
    "test-results.json": '{"passed": 3, "failed": 0}\n',
}


def make_plugin(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def trusted(*keys: tuple[Ed25519PrivateKey, str]) -> list[TrustedKey]:
    return [TrustedKey(keyid_of(k.public_key()), k.public_key(), status) for k, status in keys]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signed(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    plugin = make_plugin(tmp_path / "plugin-weather")
    write_manifest(plugin, PREDICATE, key)
    return plugin


def envelope(plugin: Path) -> dict[str, Any]:
    return json.loads((plugin / MANIFEST_FILE).read_text())


def statement(plugin: Path) -> dict[str, Any]:
    return json.loads(base64.b64decode(envelope(plugin)["payload"]))


def reason(plugin: Path, keys: list[TrustedKey], **kwargs: Any) -> str:
    with pytest.raises(VerificationError) as caught:
        verify_manifest(plugin, keys, **kwargs)
    return caught.value.reason


# ------------------------------------------------------------------------ format


def test_statement_covers_every_other_file_with_its_sha256(signed: Path) -> None:
    made = statement(signed)
    assert made["_type"] == STATEMENT_TYPE
    assert [s["name"] for s in made["subject"]] == sorted(FILES)
    import hashlib

    for subject in made["subject"]:
        expected = hashlib.sha256(FILES[subject["name"]].encode()).hexdigest()
        assert subject["digest"] == {"sha256": expected}
    assert made["predicate"]["repository"] == REPO


def test_payload_is_canonical_json(signed: Path) -> None:
    payload = base64.b64decode(envelope(signed)["payload"])
    assert payload == canonical_json(json.loads(payload))
    assert payload.startswith(b'{"_type":"https://in-toto.io/Statement/v1","predicate":{')
    assert envelope(signed)["payloadType"] == PAYLOAD_TYPE


def test_signature_is_ed25519_over_the_pae_with_the_spki_keyid(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    env = envelope(signed)
    (sig,) = env["signatures"]
    assert sig["keyid"] == keyid_of(key.public_key())
    payload = base64.b64decode(env["payload"])
    key.public_key().verify(base64.b64decode(sig["sig"]), pae(PAYLOAD_TYPE, payload))


def test_a_good_manifest_verifies_and_says_what_it_checked(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    result = verify_manifest(signed, trusted((key, "active")), repository=REPO, plugin_path=PATH)
    assert result.keyid == keyid_of(key.public_key())
    assert any("exactly the subjects" in line for line in result.checked)
    assert any("repository and plugin path" in line for line in result.checked)


# ------------------------------------------------------------------ tamper suite


def test_one_changed_byte_is_a_digest_mismatch(signed: Path, key: Ed25519PrivateKey) -> None:
    index = signed / "src" / "index.ts"
    data = bytearray(index.read_bytes())
    data[0] ^= 1
    index.write_bytes(bytes(data))
    assert reason(signed, trusted((key, "active"))) == "digest-mismatch"


@pytest.mark.parametrize("subject", sorted(FILES))
def test_each_subject_tampered_in_turn_is_a_digest_mismatch_naming_it(
    signed: Path, key: Ed25519PrivateKey, subject: str
) -> None:
    assert subject in {s["name"] for s in statement(signed)["subject"]}
    target = signed / subject
    target.write_bytes(target.read_bytes() + b"// tampered\n")
    with pytest.raises(VerificationError) as caught:
        verify_manifest(signed, trusted((key, "active")))
    assert caught.value.reason == "digest-mismatch"
    assert f"{subject} does not match its sha256" in str(caught.value)


def test_an_added_file_is_refused(signed: Path, key: Ed25519PrivateKey) -> None:
    (signed / "src" / "backdoor.ts").write_text("fetch('https://evil.example')\n")
    with pytest.raises(VerificationError, match=r"src/backdoor\.ts") as caught:
        verify_manifest(signed, trusted((key, "active")))
    assert caught.value.reason == "extra-file"


def test_a_removed_file_is_refused(signed: Path, key: Ed25519PrivateKey) -> None:
    (signed / "__tests__" / "plugin.test.ts").unlink()
    assert reason(signed, trusted((key, "active"))) == "missing-file"


def test_a_renamed_file_is_refused(signed: Path, key: Ed25519PrivateKey) -> None:
    (signed / "src" / "index.ts").rename(signed / "src" / "main.ts")
    assert reason(signed, trusted((key, "active"))) == "missing-file"


def test_edited_test_results_are_refused(signed: Path, key: Ed25519PrivateKey) -> None:
    (signed / "test-results.json").write_text('{"passed": 99, "failed": 0}\n')
    assert reason(signed, trusted((key, "active"))) == "digest-mismatch"


def test_an_envelope_resigned_with_an_untrusted_key_is_refused(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    forged = sign_statement(statement(signed), Ed25519PrivateKey.generate())
    forged["signatures"][0]["keyid"] = keyid_of(key.public_key())  # a lying hint
    (signed / MANIFEST_FILE).write_text(json.dumps(forged))
    assert reason(signed, trusted((key, "active"))) == "bad-signature"


def test_a_changed_payload_type_is_refused(signed: Path, key: Ed25519PrivateKey) -> None:
    env = envelope(signed)
    env["payloadType"] = "application/json"
    (signed / MANIFEST_FILE).write_text(json.dumps(env))
    assert reason(signed, trusted((key, "active"))) == "payload-type"


def test_a_changed_payload_breaks_the_signature(signed: Path, key: Ed25519PrivateKey) -> None:
    made = statement(signed)
    made["predicate"]["repository"] = "someone/else"
    env = envelope(signed)
    env["payload"] = base64.b64encode(canonical_json(made)).decode()
    (signed / MANIFEST_FILE).write_text(json.dumps(env))
    assert reason(signed, trusted((key, "active"))) == "bad-signature"


def test_a_manifest_copied_into_another_plugin_directory_is_refused(
    signed: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    other = tmp_path / "plugin-other"
    shutil.copytree(signed, other)
    keys = trusted((key, "active"))
    assert reason(other, keys, repository=REPO, plugin_path="plugins/plugin-other") == "wrong-path"


def test_a_manifest_claimed_for_another_repository_is_refused(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    keys = trusted((key, "active"))
    assert reason(signed, keys, repository="evil/fork", plugin_path=PATH) == "wrong-repository"


def test_a_symlink_in_the_directory_is_refused(signed: Path, key: Ed25519PrivateKey) -> None:
    os.symlink("/etc/passwd", signed / "src" / "passwd")
    assert reason(signed, trusted((key, "active"))) == "symlink"


@pytest.mark.parametrize("name", ["../escape.ts", "/etc/passwd", "a/../../b", "a\\b", "./x"])
def test_subject_paths_leaving_the_directory_are_refused(
    signed: Path, key: Ed25519PrivateKey, name: str
) -> None:
    made = statement(signed)
    made["subject"].append({"name": name, "digest": {"sha256": "0" * 64}})
    (signed / MANIFEST_FILE).write_text(json.dumps(sign_statement(made, key)))
    assert reason(signed, trusted((key, "active"))) == "bad-subject"


def test_a_missing_manifest_is_reported(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    assert reason(make_plugin(tmp_path), trusted((key, "active"))) == "no-manifest"


# --------------------------------------------------------------- keys over time


def test_any_of_several_active_keys_verifies(signed: Path, key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    result = verify_manifest(signed, trusted((other, "active"), (key, "active")))
    assert result.keyid == keyid_of(key.public_key())


def test_a_retired_key_verifies_only_when_the_caller_allows_it(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    keys = trusted((key, "retired"))
    assert reason(signed, keys) == "untrusted-key"
    assert verify_manifest(signed, keys, allow_retired=True).key_status == "retired"


def test_a_revoked_key_never_verifies(signed: Path, key: Ed25519PrivateKey) -> None:
    keys = trusted((key, "revoked"))
    assert reason(signed, keys) == "untrusted-key"
    assert reason(signed, keys, allow_retired=True) == "untrusted-key"


def test_rotation_new_key_signs_old_key_retired(tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = make_plugin(tmp_path / "before")
    write_manifest(before, PREDICATE, old)
    after = make_plugin(tmp_path / "after")
    write_manifest(after, PREDICATE, new)
    keys = trusted((old, "retired"), (new, "active"))
    assert verify_manifest(after, keys).keyid == keyid_of(new.public_key())
    assert reason(before, keys) == "untrusted-key"
    assert verify_manifest(before, keys, allow_retired=True).keyid == keyid_of(old.public_key())


def test_keys_file_round_trip_and_refusals(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "keys.json"
    other = Ed25519PrivateKey.generate()
    path.write_text(
        json.dumps([key_entry(key.public_key()), key_entry(other.public_key(), "revoked")])
    )
    loaded = load_keys(path)
    assert [k.status for k in loaded] == ["active", "revoked"]
    assert [k.keyid for k in loaded] == [keyid_of(key.public_key()), keyid_of(other.public_key())]
    bad_id = key_entry(key.public_key())
    bad_id["keyid"] = "0" * 64
    path.write_text(json.dumps([bad_id]))
    with pytest.raises(ManifestError, match="keyid does not match"):
        load_keys(path)
    path.write_text(json.dumps([{**key_entry(key.public_key()), "status": "maybe"}]))
    with pytest.raises(ManifestError, match="status must be one of"):
        load_keys(path)


@pytest.mark.parametrize("order", [("revoked", "active"), ("active", "revoked")])
def test_a_key_listed_twice_is_refused_whatever_the_statuses(
    tmp_path: Path, signed: Path, key: Ed25519PrivateKey, order: tuple[str, str]
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([key_entry(key.public_key(), status) for status in order]))
    keyid = keyid_of(key.public_key())
    with pytest.raises(ManifestError, match=rf"\[1\]: keyid {keyid} is already listed at \[0\]"):
        load_keys(path)


def test_verify_refuses_a_keys_file_with_a_duplicate_key(
    tmp_path: Path, signed: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    entries = [key_entry(key.public_key(), "revoked"), key_entry(key.public_key())]
    path.write_text(json.dumps(entries))
    assert main(["verify", str(signed), "--keys", str(path)]) != 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert f"keyid {keyid_of(key.public_key())} is already listed at [0]" in printed


# -------------------------------------------------------------------------- CLI


def test_keygen_then_verify_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    out = capsys.readouterr().out
    entry = json.loads(out[out.index("{") :])
    (private,) = (tmp_path / "keys").iterdir()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key = load_private_key(private)
    assert entry["keyid"] == keyid_of(key.public_key())

    plugin = make_plugin(tmp_path / "plugin-weather")
    write_manifest(plugin, PREDICATE, key)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps([entry]))
    args = ["verify", str(plugin), "--keys", str(keys_file), "--repository", REPO]
    assert main([*args, "--plugin-path", PATH]) == 0
    assert "verified" in capsys.readouterr().out
    (plugin / "extra.txt").write_text("x")
    assert main([*args, "--plugin-path", PATH]) == 1
    printed = capsys.readouterr().out
    assert "extra.txt" in printed and "extra-file" in printed


def test_a_passphrase_protected_key_needs_its_passphrase(tmp_path: Path) -> None:
    from bot.manifest import generate_key

    path, _ = generate_key(tmp_path, b"correct horse")
    assert "ENCRYPTED" in path.read_text()
    with pytest.raises(ManifestError):
        load_private_key(path)
    assert isinstance(load_private_key(path, b"correct horse"), Ed25519PrivateKey)


def test_the_verifier_runs_standalone_without_the_bot(
    signed: Path, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    # What target repositories run: a copy of bot/manifest.py, nothing else of the bot.
    import subprocess
    import sys

    import bot.manifest
    import bot.paths

    script = tmp_path / "verify_manifest.py"
    shutil.copyfile(bot.manifest.__file__, script)
    shutil.copyfile(bot.paths.__file__, tmp_path / "plugin_paths.py")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([key_entry(key.public_key())]))
    argv = [sys.executable, "-I", str(script), "verify", str(signed), "--keys", str(keys)]
    good = subprocess.run([*argv, "--repository", REPO], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert f"VERIFIED {signed}" in good.stdout
    bad = subprocess.run([*argv, "--repository", "evil/fork"], capture_output=True, text=True)
    assert bad.returncode == 1 and "evil/fork" in bad.stderr
    listed = subprocess.run(
        [sys.executable, "-I", str(script), "subjects", str(signed)],
        capture_output=True,
        text=True,
    )
    assert listed.stdout.split() == sorted(FILES)


def test_a_file_name_with_a_control_character_is_refused(
    signed: Path, key: Ed25519PrivateKey
) -> None:
    (signed / "src" / "a\nb.ts").write_text("x")
    assert reason(signed, trusted((key, "active"))) == "bad-name"


def test_a_predicate_with_a_malformed_plugin_is_a_wrong_path(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    plugin = make_plugin(tmp_path / "p")
    write_manifest(plugin, {**PREDICATE, "plugin": "not an object"}, key)
    assert reason(plugin, trusted((key, "active")), plugin_path=PATH) == "wrong-path"


def test_signing_a_file_list_ignores_what_is_not_listed(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    # A workspace has node_modules with symlinks; only the plugin's own files are signed.
    plugin = make_plugin(tmp_path / "p")
    (plugin / "node_modules" / ".bin").mkdir(parents=True)
    os.symlink("../vite/bin/vite.js", plugin / "node_modules" / ".bin" / "vite")
    write_manifest(plugin, PREDICATE, key, files=sorted(FILES))
    shutil.rmtree(plugin / "node_modules")
    assert verify_manifest(plugin, trusted((key, "active"))).keyid == keyid_of(key.public_key())


def test_signing_refuses_a_listed_symlink(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    plugin = make_plugin(tmp_path / "p")
    os.symlink("/etc/passwd", plugin / "src" / "passwd")
    with pytest.raises(VerificationError, match="not a regular file"):
        write_manifest(plugin, PREDICATE, key, files=[*FILES, "src/passwd"])
    (plugin / "linked").symlink_to(plugin / "src")
    with pytest.raises(VerificationError, match="below a symlink"):
        write_manifest(plugin, PREDICATE, key, files=["linked/index.ts"])


# ----------------------------------------- issue 9 point 3: look-alike subject names

LOOK_ALIKES = [
    "src/index.ts\u200b",
    "src/\u200bindex.ts",
    "src/\u202egnp.ts",
    "src/a.ts ",
    "src/..\u2024/x",
    "src/cafe\u0301.ts",
]


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_look_alike_name_is_never_signed(
    tmp_path: Path, key: Ed25519PrivateKey, name: str
) -> None:
    plugin = make_plugin(tmp_path / "plugin")
    (plugin / name).parent.mkdir(parents=True, exist_ok=True)
    (plugin / name).write_text("x")
    with pytest.raises(VerificationError) as listed:
        write_manifest(plugin, PREDICATE, key)
    assert listed.value.reason == "bad-name"
    with pytest.raises(VerificationError) as named:
        write_manifest(plugin, PREDICATE, key, [name])
    assert named.value.reason == "bad-subject"
    assert not (plugin / MANIFEST_FILE).exists()


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_signed_look_alike_subject_does_not_verify(
    signed: Path, key: Ed25519PrivateKey, name: str
) -> None:
    forged = statement(signed)
    forged["subject"].append({"name": name, "digest": {"sha256": "0" * 64}})
    (signed / MANIFEST_FILE).write_text(json.dumps(sign_statement(forged, key)))
    with pytest.raises(VerificationError, match="refused") as caught:
        verify_manifest(signed, trusted((key, "active")))
    assert caught.value.reason == "bad-subject"


# ------------------------------------------ issue 8 point 5: bound to a pull request


def test_the_statement_binds_to_base_commit_branch_and_a_newer_version(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    plugin = make_plugin(tmp_path / "plugin-weather")
    predicate = {
        **PREDICATE,
        "baseCommit": "a" * 40,
        "branch": "plugin-bot/job-1",
        "plugin": {"name": "plugin-weather", "path": PATH, "version": "0.2.0"},
    }
    write_manifest(plugin, predicate, key)
    keys = trusted((key, "active"))
    ok = verify_manifest(
        plugin, keys, base_commit="a" * 40, branch="plugin-bot/job-1", previous_version="0.1.9"
    )
    assert any("newer" in line for line in ok.checked)
    assert reason(plugin, keys, base_commit="b" * 40) == "wrong-base"
    assert reason(plugin, keys, branch="plugin-bot/job-2") == "wrong-branch"
    assert reason(plugin, keys, previous_version="0.2.0") == "version-regression"
    assert reason(plugin, keys, previous_version="1.0.0-rc.1") == "version-regression"
