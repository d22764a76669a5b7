"""The license terms of a generated catalog: the updates naming terms list their files, a
product line shares one set, and `license_terms` gives texts whose SHA-1 is the listed one."""

from __future__ import annotations

import base64
import hashlib

from generated_catalog import parse_all

from updatesync.metadata.generator import generate_catalog, license_terms


def test_updates_with_license_terms_list_files_whose_texts_match() -> None:
    records = list(generate_catalog(400, seed=7))
    docs = parse_all(records)
    with_terms = [d for d in docs if d.eula_id]
    assert with_terms
    assert all(d.eula_files and d.eula_files[0].language == "en" for d in with_terms)
    assert len({d.eula_id for d in with_terms}) < len(with_terms)  # shared by a product line
    texts = {f.digest: f for f in license_terms(records)}
    listed = {f.sha1: (d.eula_id, f) for d in with_terms for f in d.eula_files}
    assert set(texts) == set(listed)
    for digest, (eula_id, file) in listed.items():
        text = texts[digest]
        assert base64.b64encode(hashlib.sha1(text.content).digest()).decode() == digest
        assert (text.eula_id, text.language, text.name) == (eula_id, file.language, file.name)
        assert len(text.content) == file.size
    assert not [d for d in docs if d.eula_files and not d.eula_id]
