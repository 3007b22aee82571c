"""Saving shapes: laid on the file's own table, checked as the loader does, written with a backup."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agent import config
from agent.errors import ConfigError
from agent.setupview import shapes

START = """# a comment the backup keeps
[device]
id = "cam-1"

[[zones]]
id = "table"
polygon = [[0.3, 0.05], [0.85, 0.05], [0.85, 1.0], [0.3, 1.0]]
loiter_after_s = 8
"""


def doc(zone_id: str = "table", line_id: str = "exit") -> dict[str, object]:
    return {"zones": [{"id": zone_id, "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]}],
            "lines": [{"id": line_id, "points": [[0.75, 0.0], [0.75, 1.0]]}],
            "masks": [[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]}


def test_save_keeps_other_keys_writes_a_backup_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(START)
    cfg, changed = shapes.save(path, shapes.from_json(doc()))
    assert changed
    assert (tmp_path / "agent.toml.bak").read_text() == START
    table = tomllib.loads(path.read_text())
    assert table["zones"] == [{"id": "table", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]], "loiter_after_s": 8}]
    assert table["lines"] == [{"id": "exit", "points": [[0.75, 0.0], [0.75, 1.0]]}]
    assert table["privacy"]["masks"] == [[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]
    assert config.load(path) == cfg
    assert "    [0.1, 0.1],\n" in path.read_text()  # a point per line, as a person writes them
    again = shapes.save(path, shapes.from_json(doc()))
    assert again[1] is False  # nothing new: the file and its backup stay as they are
    assert (tmp_path / "agent.toml.bak").read_text() == START


@pytest.mark.parametrize("bad, message", [
    (doc(zone_id="x", line_id="x"), "used twice"),
    ({"zones": [{"id": "a", "polygon": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]]}]}, "outside [0, 1]"),
    ({"zones": [{"id": "a", "polygon": [[0.1, 0.1], [0.5, 0.1]]}]}, "at least 3 points"),
    ({"lines": [{"id": "l", "points": [[0.1, 0.1], [0.1, 0.1]]}]}, "the same"),
    ({"zones": [{"id": "a b", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]}]}, "letters, digits"),
    ({"zones": [{"id": "a", "polygon": "nope"}]}, "list of [x, y]"),
])
def test_invalid_shapes_are_refused_with_the_loaders_message_and_nothing_is_written(
        tmp_path: Path, bad: dict[str, object], message: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(START)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        shapes.save(path, shapes.from_json(bad))
    assert path.read_text() == START
    assert not (tmp_path / "agent.toml.bak").exists()


def test_a_class_the_detector_drops_fails_as_build_rules_says(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[[zones]]\nid = "z"\nclasses = ["car"]\npolygon = [[0, 0], [1, 0], [1, 1]]\n')
    with pytest.raises(ConfigError, match="detector.classes does not include it"):
        shapes.save(path, shapes.from_json({"zones": [{"id": "z", "polygon": [[0, 0], [0.5, 0], [1, 1]]}]}))


def test_save_keeps_the_files_owner_group_and_mode(tmp_path: Path) -> None:
    """hw/install.sh installs agent.toml root:edge-agent 0640 and setup-view runs under sudo: a save
    that made it root:root would leave the service unable to read its own config."""
    import os
    import stat

    path = tmp_path / "agent.toml"
    path.write_text(START)
    if os.geteuid() == 0:  # CI runs as root: the group is the service's, not root's
        os.chown(path, 0, 65534)
    path.chmod(0o640)
    before = path.stat()
    shapes.save(path, shapes.from_json(doc()))
    for kept in (path, tmp_path / "agent.toml.bak"):
        st = kept.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (before.st_uid, before.st_gid, 0o640), kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.toml", "agent.toml.bak"]  # no temp file left


def test_two_saves_at_once_each_write_a_whole_file(tmp_path: Path) -> None:
    """Each save writes its own temp file: a replace never installs a file another save is writing."""
    import threading

    path = tmp_path / "agent.toml"
    path.write_text(START)
    docs = [shapes.from_json(doc("a", "x")), shapes.from_json(doc("b", "y"))]
    start = threading.Barrier(2)
    failed: list[BaseException] = []

    def saves(i: int) -> None:
        start.wait()
        try:
            for n in range(20):
                shapes.save(path, docs[(i + n) % 2])
                tomllib.loads(path.read_text())  # whatever the other thread is doing
        except BaseException as exc:  # noqa: BLE001 (reported on the test's thread)
            failed.append(exc)

    threads = [threading.Thread(target=saves, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []
    assert [z["id"] for z in tomllib.loads(path.read_text())["zones"]] in (["a"], ["b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.toml", "agent.toml.bak"]


def test_points_sent_back_unchanged_keep_the_files_own_digits(tmp_path: Path) -> None:
    """The page rounds to 4 decimals: a save that moves a mask only must not rewrite a zone drawn by
    hand with 5 (it would read as a new zone, and set aside zones a remote change sent)."""
    path = tmp_path / "agent.toml"
    path.write_text(START.replace("[0.3, 0.05]", "[0.30001, 0.05]"))
    page = {"zones": [{"id": "table", "polygon": [[0.3, 0.05], [0.85, 0.05], [0.85, 1.0], [0.3, 1.0]]}],
            "masks": [[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]}
    shapes.save(path, shapes.from_json(page))
    table = tomllib.loads(path.read_text())
    assert table["zones"][0]["polygon"][0] == [0.30001, 0.05]  # as the file had it
    assert table["privacy"]["masks"] == [[[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]]
    moved = {"zones": [{"id": "table", "polygon": [[0.31, 0.05], [0.85, 0.05], [0.85, 1.0], [0.3, 1.0]]}]}
    shapes.save(path, shapes.from_json(moved))
    assert tomllib.loads(path.read_text())["zones"][0]["polygon"][0] == [0.31, 0.05]  # moved: the page's
