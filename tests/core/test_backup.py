"""Backups: manifest names that leave the backup, symbolic links either way, hashes checked before anything is
written, all-or-nothing restores (a damaged file, a failure midway, a failure while swapping), rotation."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from conference.core import backup_restore
from conference.core.backup import BackupError, create_backup, verify_backup
from conference.core.backup_restore import restore_backup
from conference.core.backup_rotation import prune_backups, timestamped
from conference.core.backup_secrets import SecretsError, seal, unseal
from conference.extensions import db

PASSPHRASE = "eine lange Passphrase"


def tree(root: Path) -> dict[str, str]:
    """Every regular file under `root` with its hash (links listed as such)."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            result[str(path.relative_to(root))] = "link"
        elif path.is_file():
            result[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def instance_state(app: Flask) -> dict[str, Any]:
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///").split("?")[0])
    return {"db": hashlib.sha256(database.read_bytes()).hexdigest(), "uploads": tree(Path(app.config["UPLOAD_DIR"])),
            "instance": tree(Path(app.instance_path)),
            "staged": sorted(p.name for p in Path(app.config["UPLOAD_DIR"]).parent.iterdir()
                             if ".restore-" in p.name or ".old-" in p.name)}


@pytest.fixture
def filled(app: Flask, create_user: Any, tmp_path: Path) -> Path:
    """An instance with a user and three uploaded files, and a backup of it with the secret key."""
    create_user("gesichert@example.org")
    uploads = Path(app.config["UPLOAD_DIR"])
    for index in range(3):
        (uploads / "presentations").mkdir(parents=True, exist_ok=True)
        (uploads / "presentations" / f"folien-{index}.pdf").write_bytes(b"%PDF-1.4 " + bytes([index]) * 1000)
    db.session.remove()
    create_backup(app, tmp_path / "backup", passphrase=PASSPHRASE)
    return tmp_path / "backup"


def edit_manifest(backup: Path, change: Any) -> None:
    manifest = json.loads((backup / "manifest.json").read_text())
    change(manifest)
    (backup / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../outside.sqlite3", "/etc/passwd", "uploads/../../outside.sqlite3"])
def test_database_file_outside_the_backup_is_refused(app: Flask, filled: Path, tmp_path: Path, name: str,
                                                     runner: Any) -> None:
    (tmp_path / "outside.sqlite3").write_bytes((filled / "database.sqlite3").read_bytes())

    def point_outside(manifest: dict[str, Any]) -> None:
        manifest["database"]["file"] = name

    edit_manifest(filled, point_outside)
    with pytest.raises(BackupError, match="unsafe or unknown database file"):
        verify_backup(filled)
    result = runner.invoke(args=["backup", "--verify", str(filled)])
    assert result.exit_code != 0 and "unsafe" in result.output


@pytest.mark.parametrize("name", ["../../outside.sqlite3", "/etc/hostname", "presentations/../../x", "a//b", "./a",
                                  "a\\..\\b", ""])
def test_upload_names_that_leave_the_backup_are_refused(app: Flask, filled: Path, name: str) -> None:
    before = instance_state(app)

    def add(manifest: dict[str, Any]) -> None:
        manifest["files"][name] = {"sha256": "0" * 64, "size": 1}

    edit_manifest(filled, add)
    with pytest.raises(BackupError, match="unsafe path"):
        restore_backup(app, filled, replace=True, passphrase=PASSPHRASE)
    assert instance_state(app) == before


def test_backup_skips_a_symlink_in_uploads_with_a_warning(app: Flask, create_user: Any, tmp_path: Path) -> None:
    create_user()
    secret = tmp_path / "outside-the-instance.txt"
    secret.write_text("nicht für die Sicherung")
    uploads = Path(app.config["UPLOAD_DIR"])
    (uploads / "presentations").mkdir(parents=True, exist_ok=True)
    (uploads / "presentations" / "echt.pdf").write_bytes(b"%PDF-1.4 echt")
    (uploads / "presentations" / "link.pdf").symlink_to(secret)
    (uploads / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    db.session.remove()
    result = create_backup(app, tmp_path / "backup")
    manifest = verify_backup(tmp_path / "backup")
    assert set(manifest["files"]) == {"presentations/echt.pdf"}
    assert any("presentations/link.pdf" in w for w in result.warnings)
    assert any("linked-dir" in w for w in result.warnings)
    everything = b"".join(p.read_bytes() for p in (tmp_path / "backup").rglob("*") if p.is_file())
    assert "nicht für die Sicherung".encode() not in everything


@pytest.mark.parametrize("where", ["file", "folder"])
def test_restore_refuses_symlinks_in_the_backup(app: Flask, filled: Path, tmp_path: Path, where: str) -> None:
    before = instance_state(app)
    if where == "file":
        victim = filled / "uploads" / "presentations" / "folien-1.pdf"
        copy = tmp_path / "same-bytes.pdf"  # same content: a followed link would pass the hash check
        copy.write_bytes(victim.read_bytes())
        victim.unlink()
        victim.symlink_to(copy)
    else:
        folder = filled / "uploads" / "presentations"
        folder.rename(tmp_path / "moved")
        folder.symlink_to(tmp_path / "moved", target_is_directory=True)
    with pytest.raises(BackupError, match="symbolic link"):
        restore_backup(app, filled, replace=True, passphrase=PASSPHRASE)
    assert instance_state(app) == before


def test_damaged_file_is_refused_before_anything_is_written(app: Flask, filled: Path) -> None:
    before = instance_state(app)
    victim = filled / "uploads" / "presentations" / "folien-2.pdf"
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    with pytest.raises(BackupError, match="folien-2.pdf is missing or damaged"):
        restore_backup(app, filled, replace=True, passphrase=PASSPHRASE)
    assert instance_state(app) == before


def test_failure_midway_leaves_the_old_instance_as_it_was(app: Flask, filled: Path) -> None:
    (Path(app.config["UPLOAD_DIR"]) / "presentations" / "neuer.pdf").write_bytes(b"nach der Sicherung")
    before = instance_state(app)
    copies: list[Path] = []

    def disk_full_on_second_file(source: Path, target: Path) -> tuple[str, int]:
        copies.append(target)
        if len(copies) == 2:
            target.write_bytes(b"half")
            raise OSError(28, "No space left on device")
        return backup_restore.copy_nofollow(source, target)

    with pytest.raises(OSError, match="No space left"):
        restore_backup(app, filled, replace=True, passphrase=PASSPHRASE, copy=disk_full_on_second_file)
    assert len(copies) == 2
    assert instance_state(app) == before  # no staging folder left next to the uploads either


def test_failure_while_swapping_puts_back_what_was_swapped(app: Flask, filled: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (Path(app.config["UPLOAD_DIR"]) / "presentations" / "neuer.pdf").write_bytes(b"nach der Sicherung")
    (Path(app.instance_path) / "secret_key").write_text("der alte Schluessel")
    before = instance_state(app)
    real_replace = os.replace

    def fail_on_the_key(source: Any, target: Any) -> None:
        if Path(target).name == "secret_key":  # the last item: database and uploads are swapped already
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(backup_restore.os, "replace", fail_on_the_key)
    with pytest.raises(OSError, match="Input/output"):
        restore_backup(app, filled, replace=True, passphrase=PASSPHRASE)
    monkeypatch.undo()
    assert instance_state(app) == before


def test_restore_replaces_everything_when_it_succeeds(app: Flask, filled: Path) -> None:
    (Path(app.config["UPLOAD_DIR"]) / "presentations" / "neuer.pdf").write_bytes(b"nach der Sicherung")
    result = restore_backup(app, filled, replace=True, passphrase=PASSPHRASE)
    assert result.files == 3 and result.secrets
    assert set(tree(Path(app.config["UPLOAD_DIR"]))) == {f"presentations/folien-{i}.pdf" for i in range(3)}
    assert (Path(app.instance_path) / "secret_key").read_text() == "test-secret-key"
    leftovers = [p.name for p in Path(app.config["UPLOAD_DIR"]).parent.iterdir() if ".old-" in p.name
                 or ".restore-" in p.name]
    assert leftovers == []


def test_secrets_need_the_passphrase(app: Flask, filled: Path) -> None:
    before = instance_state(app)
    with pytest.raises(BackupError, match="give its passphrase"):
        restore_backup(app, filled, replace=True)
    with pytest.raises(BackupError, match="wrong passphrase"):
        restore_backup(app, filled, replace=True, passphrase="eine falsche Passphrase")
    assert instance_state(app) == before
    assert "test-secret-key" not in (filled / "secrets.enc").read_text()


def test_sealed_secrets_refuse_tampering_and_hostile_parameters() -> None:
    sealed = json.loads(seal({"secret_key": "k" * 64}, PASSPHRASE))
    assert unseal(json.dumps(sealed).encode(), PASSPHRASE) == {"secret_key": "k" * 64}
    flipped = dict(sealed, ciphertext=sealed["ciphertext"][:-4] + ("AAAA" if sealed["ciphertext"][-4:] != "AAAA"
                                                                     else "BBBB"))
    with pytest.raises(SecretsError, match="wrong passphrase, or the encrypted secrets are damaged"):
        unseal(json.dumps(flipped).encode(), PASSPHRASE)
    with pytest.raises(SecretsError, match="implausible"):
        unseal(json.dumps(dict(sealed, n=2**30)).encode(), PASSPHRASE)


def test_rotation_keeps_the_newest_complete_backups(tmp_path: Path) -> None:
    parent = tmp_path / "backups"
    made = []
    for second in range(5):
        folder = timestamped(parent, now=__import__("datetime").datetime(2027, 3, 18, 3, 0, second))
        folder.mkdir()
        (folder / "manifest.json").write_text("{}")
        made.append(folder)
    (parent / "notes").mkdir()
    (parent / "20270101T000000Z").mkdir()  # no manifest: half-written, not counted, not touched
    removed = prune_backups(parent, 2)
    assert removed == made[:3]
    assert sorted(p.name for p in parent.iterdir()) == sorted(["notes", "20270101T000000Z", made[3].name,
                                                               made[4].name])


def test_an_upload_folder_that_is_a_link_keeps_its_link(app: Flask, filled: Path, tmp_path: Path) -> None:
    """The operator's own layout (uploads on another disk, linked) survives a restore; the data lands there."""
    uploads = Path(app.config["UPLOAD_DIR"])
    elsewhere = tmp_path / "big-disk" / "uploads"
    elsewhere.parent.mkdir()
    uploads.rename(elsewhere)
    uploads.symlink_to(elsewhere, target_is_directory=True)
    restore_backup(app, filled, replace=True, passphrase=PASSPHRASE)
    assert uploads.is_symlink() and uploads.resolve() == elsewhere
    assert set(tree(elsewhere)) == {f"presentations/folien-{i}.pdf" for i in range(3)}
