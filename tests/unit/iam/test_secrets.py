"""The master key, its derived keys, and the cipher for secret access keys."""

from __future__ import annotations

import base64
import logging
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from moorage.config import ConfigError
from moorage.iam.secrets import (
    MASTER_KEY_FILE,
    KeyRing,
    MasterKey,
    MasterKeyError,
    SecretCipher,
    SecretUndecryptable,
    load_master_key,
)

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def encoded(material: bytes) -> str:
    return base64.urlsafe_b64encode(material).decode()


def cipher(master: MasterKey | None = None) -> SecretCipher:
    return KeyRing.derive(master or MasterKey.generate()).access_key_secrets


# -- the master key ---------------------------------------------------------------------


def test_first_load_creates_a_private_key_file_and_later_loads_reuse_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_master_key(None, data_dir)
    path = data_dir / MASTER_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MasterKey.decode(path.read_text(), "test") == first
    assert load_master_key(None, data_dir) == first
    # No temporary file is left behind.
    assert [p.name for p in data_dir.iterdir()] == [MASTER_KEY_FILE]


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / MASTER_KEY_FILE
    material = bytes(range(32))
    path.write_text(encoded(material) + "\n")
    path.chmod(0o600)
    assert load_master_key(None, tmp_path).material == material
    assert path.read_text() == encoded(material) + "\n"


def _load_in_child(data_dir: str, queue: multiprocessing.Queue[bytes]) -> None:
    queue.put(load_master_key(None, Path(data_dir)).material)


def test_processes_that_start_together_agree_on_one_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[bytes] = context.Queue()
    children = [
        context.Process(target=_load_in_child, args=(str(tmp_path), queue)) for _ in range(4)
    ]
    for child in children:
        child.start()
    keys = {queue.get(timeout=60) for _ in children}
    for child in children:
        child.join(timeout=60)
    assert len(keys) == 1
    assert load_master_key(None, tmp_path).material in keys


def test_the_setting_wins_over_the_file_and_creates_none(tmp_path: Path) -> None:
    material = os.urandom(32)
    assert load_master_key(encoded(material), tmp_path).material == material
    assert load_master_key(encoded(material).rstrip("="), tmp_path).material == material
    assert not (tmp_path / MASTER_KEY_FILE).exists()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        encoded(os.urandom(31)),
        encoded(os.urandom(33)),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet: "+" and "/"
        encoded(os.urandom(32)) + "x",
    ],
)
def test_a_malformed_setting_is_a_one_line_config_error(text: str) -> None:
    with pytest.raises(MasterKeyError) as raised:
        load_master_key(text, Path("/nonexistent"))
    message = str(raised.value)
    assert isinstance(raised.value, ConfigError)
    assert "\n" not in message
    assert "MOORAGE_MASTER_KEY" in message
    if text:
        assert text not in message


def test_a_malformed_key_file_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / MASTER_KEY_FILE
    path.write_text("garbage\nmore garbage\n")
    with pytest.raises(MasterKeyError, match=f"master key file {path} is not a master key") as e:
        load_master_key(None, tmp_path)
    assert "\n" not in str(e.value)
    assert "garbage" not in str(e.value)


def test_an_unreadable_key_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / MASTER_KEY_FILE).mkdir()  # a directory where the file should be
    with pytest.raises(MasterKeyError, match="cannot read master key"):
        load_master_key(None, tmp_path)


def test_a_key_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    material = os.urandom(32)
    path = tmp_path / MASTER_KEY_FILE
    path.write_text(encoded(material))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="moorage.iam"):
        assert load_master_key(None, tmp_path).material == material
    assert "chmod 600" in caplog.text
    assert encoded(material) not in caplog.text


def test_the_master_key_stays_out_of_repr_and_str() -> None:
    master = MasterKey(bytes(range(32)))
    keys = KeyRing.derive(master)
    for text in (repr(master), str(master), repr(keys), str(keys)):
        assert encoded(master.material) not in text
        assert repr(master.material) not in text
        assert repr(keys.registry_login) not in text
    assert master.encode() == encoded(master.material)


def test_each_purpose_gets_its_own_key() -> None:
    master = MasterKey(bytes(32))
    keys = {master.derive(purpose) for purpose in ("access-key-secret", "registry-login", "x")}
    assert len(keys) == 3
    assert all(len(key) == 32 for key in keys)
    assert master.derive("registry-login") == KeyRing.derive(master).registry_login
    assert MasterKey(bytes(32)).derive("x") == master.derive("x")  # deterministic


# -- the cipher -------------------------------------------------------------------------


def test_round_trip_with_fresh_nonces() -> None:
    box = cipher()
    first = box.encrypt(SECRET, "AKIAEXAMPLE")
    second = box.encrypt(SECRET, "AKIAEXAMPLE")
    assert first != second
    assert SECRET.encode() not in first
    assert box.decrypt(first, "AKIAEXAMPLE") == SECRET
    assert box.decrypt(second, "AKIAEXAMPLE") == SECRET


def test_a_ciphertext_only_opens_in_its_own_context() -> None:
    box = cipher()
    sealed = box.encrypt(SECRET, "AKIAFIRST")
    with pytest.raises(SecretUndecryptable, match="altered or belongs to another key"):
        box.decrypt(sealed, "AKIASECOND")


def test_tampering_is_detected_wherever_it_happens() -> None:
    box = cipher()
    sealed = box.encrypt(SECRET, "AKIAEXAMPLE")
    for index in range(len(sealed)):
        altered = bytearray(sealed)
        altered[index] ^= 0x01
        with pytest.raises(SecretUndecryptable) as raised:
            box.decrypt(bytes(altered), "AKIAEXAMPLE")
        assert SECRET not in str(raised.value)
    for truncated in (b"", sealed[:1], sealed[:-1], sealed[:20]):
        with pytest.raises(SecretUndecryptable):
            box.decrypt(truncated, "AKIAEXAMPLE")


def test_another_master_key_is_named_as_such() -> None:
    sealed = cipher(MasterKey(bytes(32))).encrypt(SECRET, "AKIAEXAMPLE")
    other = cipher(MasterKey(bytes(31) + b"\x01"))
    assert not other.encrypted_by_this_key(sealed)
    assert cipher(MasterKey(bytes(32))).encrypted_by_this_key(sealed)
    with pytest.raises(SecretUndecryptable, match="another master key") as raised:
        other.decrypt(sealed, "AKIAEXAMPLE")
    assert SECRET not in str(raised.value)
    assert repr(other) == "SecretCipher(...)"
