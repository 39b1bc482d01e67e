"""Finding files on disk and unpacking gzipped or system-wide copies (glowapp.data.sources)."""

from __future__ import annotations

import gzip

import pytest

from glowapp.data.sources import has_files, not_found_message, unpack_files

NAMES = ("a-ubyte", "b-ubyte")


def test_has_files_tells_folders_from_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "list.txt").write_text("x")
    assert has_files(tmp_path, ["images/", "list.txt"])
    assert not has_files(tmp_path, ["list.txt/"])
    assert not has_files(tmp_path, ["images"])
    assert not has_files(tmp_path, ["images/", "other.txt"])


def test_unpack_files_decompresses_the_first_complete_source(tmp_path):
    target, partial, full = tmp_path / "raw", tmp_path / "partial", tmp_path / "full"
    partial.mkdir()
    (partial / "a-ubyte").write_bytes(b"partial")  # b-ubyte missing: skipped
    full.mkdir()
    (full / "a-ubyte.gz").write_bytes(gzip.compress(b"alpha"))
    (full / "b-ubyte").write_bytes(b"beta")
    assert unpack_files(NAMES, target, [partial, full]) == full
    assert (target / "a-ubyte").read_bytes() == b"alpha"
    assert (target / "b-ubyte").read_bytes() == b"beta"
    assert sorted(p.name for p in target.iterdir()) == list(NAMES)  # no temporary files left
    # now the target itself is complete and wins
    assert unpack_files(NAMES, target, [full]) == target


def test_unpack_files_finds_nothing(tmp_path):
    assert unpack_files(NAMES, tmp_path / "raw", [tmp_path / "nowhere"]) is None
    assert not (tmp_path / "raw").exists()


def test_unpack_files_names_a_bad_archive(tmp_path):
    (tmp_path / "a-ubyte.gz").write_bytes(b"not gzip")
    (tmp_path / "b-ubyte").write_bytes(b"ok")
    with pytest.raises(OSError, match=r"could not unpack .*a-ubyte.gz into .*raw/a-ubyte"):
        unpack_files(NAMES, tmp_path / "raw", [tmp_path])
    assert not (tmp_path / "raw" / "a-ubyte").exists()


def test_not_found_message_format():
    message = not_found_message("X", ["/a", "/b"], ["do this"], "it is gone.")
    assert message.splitlines() == [
        "X data set not found: it is gone.",
        "Looked in:",
        "  - /a",
        "  - /b",
        "To provide it, do one of:",
        "  - do this",
    ]
