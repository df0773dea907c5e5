"""Atomic writes: complete files or none, and no shared temporary files."""

import pytest

from pydiff.atomic import replacing, write_text


def test_two_writers_of_one_name_do_not_share_a_temporary_file(tmp_path):
    target = tmp_path / "result.json"
    with replacing(target) as first:
        with replacing(target) as second:
            assert first != second and first.parent == second.parent == tmp_path
            first.write_text("first")
            second.write_text("second")
        assert target.read_text() == "second" and first.read_text() == "first"
    assert target.read_text() == "first" and list(tmp_path.iterdir()) == [target]


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    write_text("old", target)
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_a_written_file_gets_the_mode_of_any_new_file(tmp_path):
    # tempfile's private 0o600 must not reach the files a run or a data set shares with a group
    import os

    umask = os.umask(0o022)
    try:
        import importlib

        import pydiff.atomic

        importlib.reload(pydiff.atomic)
        pydiff.atomic.write_text("x", tmp_path / "shared.json")
        assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
        importlib.reload(pydiff.atomic)
