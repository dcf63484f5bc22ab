"""Column checks on Arrow schemas (contracts/schemas.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from contracts.schemas import CLEAN_SCHEMA, check_columns, missing_columns


def test_check_columns_names_origin_missing_and_found():
    schema = pa.schema([("doc_id", pa.string()), ("text", pa.string())])
    assert missing_columns(schema, ["text", "source", "posted_at"]) == ["source", "posted_at"]
    with pytest.raises(KeyError, match=r"posts\.parquet: missing column\(s\) source, posted_at; expected X; "
                                       r"columns found: doc_id, text"):
        check_columns(schema, ["doc_id", "source", "posted_at"], origin="posts.parquet", expected="X", error=KeyError)
    check_columns(pa.schema(list(CLEAN_SCHEMA)), CLEAN_SCHEMA, origin="ok", expected="CLEAN_SCHEMA")
