"""Stores written by earlier releases (tests/fixtures/store-v1, store-v2, made by
tests/fixtures/make_store.py with each release's own code) open, list, load and take new
corrections with today's code."""
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from core.errors import DelineateError
from store.corrections import SCHEMA_VERSION, CorrectionsStore

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("release", ["store-v1", "store-v2"])
def test_a_store_of_an_earlier_release_opens_lists_loads_and_saves(tmp_path, release):
    root = tmp_path / "store"
    shutil.copytree(FIXTURES / release, root)
    with CorrectionsStore(root) as st:
        assert st.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        cases = st.cases()
        assert sorted(c.state for c in cases) == ["approved", "in_review"]
        (approved,) = st.cases("approved")
        assert approved.model_id == "ct-phantom" and approved.model_version == "1.0"
        assert approved.uncertainty == pytest.approx(0.1) and approved.split in ("train", "holdout")
        assert approved.size == "[8, 8, 4]" and approved.modality == "CT"
        assert isinstance(approved.source_meta, dict)
        image, ai, fixed = st.load(approved.id)
        assert image.array.shape == (4, 8, 8) and image.modality == "CT"
        assert np.count_nonzero(ai.array == 1) == 32 and np.count_nonzero(fixed.array == 2) == 4
        assert fixed.table.get(2).name == "tumour" and st.check() == []
        info = st.latest(approved.id)
        assert info["reviewer"] == "fixture" and (info["card"] is None) == (release == "store-v1")
        fixed.array[0, 0, 0] = 2
        assert st.save(image, ai, fixed, reviewer="today", card={"id": "x", "version": "2"}) == (approved.id, 2)
    with CorrectionsStore(root) as st:  # what was saved is there on the next opening
        assert st.latest(approved.id)["card"] == {"id": "x", "version": "2"}
        assert st.load(approved.id)[2].array[0, 0, 0] == 2 and st.load(approved.id, 1)[2].array[0, 0, 0] == 0
        assert len(st.cases()) == 2 and st.check() == []


def test_the_context_manager_closes_the_connection_however_the_block_ends(tmp_path):
    with pytest.raises(RuntimeError):
        with CorrectionsStore(tmp_path / "store") as st:
            raise RuntimeError("boom")
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        st.db.execute("SELECT 1")


def test_rows_are_read_by_column_name_not_position(tmp_path):
    """A store whose cases table has its columns in another order (a migration that rebuilt it)
    still reads correctly."""
    root = tmp_path / "store"
    shutil.copytree(FIXTURES / "store-v2", root)
    db = sqlite3.connect(root / "index.sqlite")
    cols = [r[1] for r in db.execute("PRAGMA table_info(cases)")]
    db.execute(f"CREATE TABLE shuffled AS SELECT {', '.join(reversed(cols))} FROM cases")
    db.execute("DROP TABLE cases")
    db.execute("ALTER TABLE shuffled RENAME TO cases")
    db.commit()
    db.close()
    with CorrectionsStore(root) as st:
        (approved,) = st.cases("approved")
        assert approved.modality == "CT" and approved.state == "approved" and approved.size == "[8, 8, 4]"
        assert st.case(approved.id) == approved and st.load(approved.id)[0].array.shape == (4, 8, 8)


def test_a_store_from_a_newer_release_or_not_a_store_is_refused_clearly(tmp_path):
    root = tmp_path / "store"
    shutil.copytree(FIXTURES / "store-v2", root)
    db = sqlite3.connect(root / "index.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(DelineateError, match="newer Delineate"):
        CorrectionsStore(root)
    (tmp_path / "junk" / "cases").mkdir(parents=True)
    (tmp_path / "junk" / "index.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DelineateError, match="index.sqlite: cannot open the store's index"):
        CorrectionsStore(tmp_path / "junk")


def test_on_postgresql_the_connection_closes_and_a_newer_schema_is_refused(pg_server, tmp_path):
    """The fixtures above are SQLite files of earlier releases; a team store (no earlier release)
    keeps the same two promises: the context manager closes its connection, and a store from a
    newer release is refused clearly rather than written to."""
    import psycopg

    files = tmp_path / "share"
    files.mkdir()
    url = pg_server.url(pg_server.fresh(), files)
    with pytest.raises(RuntimeError):
        with CorrectionsStore(url) as st:
            assert st.schema_version() == SCHEMA_VERSION
            raise RuntimeError("boom")
    assert st.db.closed
    with pytest.raises(psycopg.OperationalError):
        st.db.execute("SELECT 1")
    with CorrectionsStore(url) as st:
        st.index.set_version(SCHEMA_VERSION + 1)
    with pytest.raises(DelineateError, match="newer Delineate"):
        CorrectionsStore(url)
