from __future__ import annotations

from dsv2cli.index.bm25 import BM25, BM25Doc, tokenize


def test_identifiers_paths_and_clause_numbers_become_searchable_terms() -> None:
    terms = tokenize("parse_config_file parseConfigFile src/app/main.py see clause 8.2")
    assert {"parse_config_file", "parseconfigfile", "config", "file", "main", "8.2"} <= set(terms)
    assert "the" not in tokenize("the")


def test_words_of_a_question_find_a_camel_case_function() -> None:
    docs = [
        BM25Doc("def loadUserProfile(uid):\n    return db.get(uid)", "app/users.py"),
        BM25Doc("def render_chart(data):\n    return svg(data)", "app/charts.py"),
    ]
    scores = BM25(docs).scores("how is a user profile loaded?")
    assert max(scores, key=lambda i: scores[i]) == 0


def test_a_question_naming_a_file_prefers_chunks_of_that_file() -> None:
    body = "def handler(request):\n    return respond(request)"
    docs = [BM25Doc(body, "api/billing.py"), BM25Doc(body, "api/shipping.py")]
    scores = BM25(docs).scores("what does the handler in shipping do")
    assert scores[1] > scores[0]


def test_clause_numbers_match_exactly() -> None:
    docs = [BM25Doc("8.2 Fees are due in 30 days."), BM25Doc("8.3 Termination. 2 parties.")]
    scores = BM25(docs).scores("What does clause 8.2 say?")
    assert set(scores) == {0}
