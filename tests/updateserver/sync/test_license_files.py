"""A downstream's download of the license terms' files after the metadata, over real HTTP,
on SQLite and PostgreSQL: the SHA-1 check, what stays pending (and is said in
SoftwareDistribution.log), and the next sync completing it without any new revision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Databases
from license_pair import Pair, license_pair
from sqlalchemy import update

from updatesync.metadata.generator import license_terms
from updatesync.updateserver import license_terms as terms
from updatesync.updateserver import schema as t


@pytest.fixture
def pair(tmp_path: Path, databases: Databases) -> Iterator[Pair]:
    with license_pair(tmp_path, databases) as made:
        yield made


def test_a_downstream_downloads_checks_and_completes_the_license_terms(pair: Pair) -> None:
    listed = {f.sha1 for d in pair.with_terms() for f in d.eula_files}
    with_terms = sorted({d.update_id for d in pair.with_terms()})
    assert listed and with_terms

    # The upstream does not hold the files yet: the sync succeeds, they stay pending.
    first = pair.sync()
    assert first.license_files_downloaded == 0
    assert first.license_files_failed == len(listed)
    assert sorted(first.license_terms_pending) == with_terms
    assert terms.counts(pair.downstream) == (len(listed), len(listed))
    log = (pair.data / "B" / "logs" / "SoftwareDistribution.log").read_text(encoding="utf-8")
    assert "could not be downloaded" in log and "HTTP 404" in log
    assert "Traceback" not in log

    # One file comes back altered: refused by its digest, still pending.
    terms.add_generated_license_files(pair.upstream)
    tampered = sorted(listed)[0]
    with pair.upstream.engine.begin() as conn:
        conn.execute(
            update(t.eula_content)
            .where(t.eula_content.c.digest == tampered)
            .values(content=b"not the license terms")
        )
    second = pair.sync()  # no new revision: only the pending files are asked for
    assert second.new_revisions == 0
    assert second.license_files_downloaded == len(listed) - 1
    assert second.license_files_failed == 1
    pending = terms.pending_files(pair.downstream)
    assert [f.digest for f in pending] == [tampered]
    log = (pair.data / "B" / "logs" / "SoftwareDistribution.log").read_text(encoding="utf-8")
    assert f"the metadata lists {tampered}" in log

    # Repaired upstream: the next sync completes the license terms.
    with pair.upstream.engine.begin() as conn:
        conn.execute(t.eula_content.delete().where(t.eula_content.c.digest == tampered))
    terms.add_generated_license_files(pair.upstream)
    third = pair.sync()
    assert third.license_files_downloaded == 1
    assert third.license_terms_pending == ()
    assert terms.counts(pair.downstream) == (len(listed), 0)
    for file in license_terms(pair.records):
        held = terms.held_file(pair.downstream, file.digest)
        assert held == (file.name, file.content)
