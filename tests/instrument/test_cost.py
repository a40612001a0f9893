"""The price table: parsing with located errors, matching, usage extraction, cost."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfpilot.errors import ConfigError
from perfpilot.instrument.cost import (
    FULL_PARSE_MAX_BYTES,
    OPENAI_HOST,
    OPENAI_PRICES,
    ModelPrice,
    PriceTable,
    Rule,
    Usage,
    default_prices,
    extract_usage,
    load_prices,
    parse_prices,
)

EXAMPLE = """\
[[api]]
host = "api.openai.com"          # exact host, or "*.example.com"
path = "/v1/chat/completions"    # optional prefix / template match
kind = "openai"                  # usage-based: prices per 1M tokens by model
[api.models."gpt-4o-mini"]
input_per_1m = 0.15
output_per_1m = 0.60
[[api]]
host = "maps.example.com"
kind = "per_call"                # fixed price per call
per_call = 0.005
"""


def test_the_example_table_loads_and_prices_calls(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(EXAMPLE)
    table = load_prices(str(path))
    chat = table.match("api.openai.com", "/v1/chat/completions")
    assert chat is not None and chat.kind == "openai" and chat.usage_based
    assert chat.cost(Usage("gpt-4o-mini", 1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert chat.cost(Usage("gpt-4o-mini", 1200, 300)) == pytest.approx(
        (1200 * 0.15 + 300 * 0.60) / 1e6
    )
    maps = table.match("maps.example.com", "/geocode/42")
    assert maps is not None and not maps.usage_based
    assert maps.cost(None) == 0.005
    assert table.match("other.example.com", "/") is None
    # the file has a rule for api.openai.com, so no built-in one is added for other paths
    assert table.match("api.openai.com", "/v1/embeddings") is None


def test_a_table_without_an_openai_rule_gets_the_built_in_one() -> None:
    table = parse_prices('[[api]]\nhost = "x.com"\nkind = "per_call"\nper_call = 1\n')
    rule = table.match(OPENAI_HOST, "/v1/embeddings")
    assert rule is not None and rule.usage_based
    price = OPENAI_PRICES["text-embedding-3-small"]
    assert rule.cost(Usage("text-embedding-3-small", 1_000_000, 0)) == pytest.approx(price[0])
    assert parse_prices("").match(OPENAI_HOST, "/v1/chat/completions") is not None
    assert default_prices().match("API.OPENAI.COM", "/v1/responses") is not None


def test_an_openai_rule_keeps_the_built_in_models_and_overrides_listed_ones() -> None:
    table = parse_prices(
        '[[api]]\nhost = "llm.internal:4000"\nkind = "openai"\n'
        '[api.models."gpt-4o"]\ninput_per_1m = 1.0\noutput_per_1m = 2.0\n'
        '[api.models."llama-3-70b"]\ninput_per_1m = 0.5\n'
    )
    rule = table.match("llm.internal:4000", "/v1/chat/completions")
    assert rule is not None
    assert rule.cost(Usage("gpt-4o", 1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert rule.cost(Usage("llama-3-70b", 2_000_000, 1_000_000)) == pytest.approx(1.0)
    mini = OPENAI_PRICES["gpt-4o-mini"]
    assert rule.cost(Usage("gpt-4o-mini", 1_000_000, 0)) == pytest.approx(mini[0])


def test_dated_model_names_use_the_longest_listed_prefix() -> None:
    rule = default_prices().match(OPENAI_HOST, "/")
    assert rule is not None
    assert rule.model_price("gpt-4o-mini-2024-07-18") == ModelPrice(*OPENAI_PRICES["gpt-4o-mini"])
    assert rule.model_price("gpt-4o-2024-08-06") == ModelPrice(*OPENAI_PRICES["gpt-4o"])
    assert rule.model_price("gpt-4omni") is None  # a prefix must end at a '-'


def test_unknown_models_cost_nothing_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    rule = parse_prices('[[api]]\nhost = "unknown-model.test"\nkind = "openai"\n').match(
        "unknown-model.test", "/"
    )
    assert rule is not None
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        assert rule.cost(Usage("mystery-model", 1000, 1000)) == 0.0
        assert rule.cost(Usage("mystery-model", 1000, 1000)) == 0.0
    messages = [r.getMessage() for r in caplog.records if "mystery-model" in r.getMessage()]
    assert len(messages) == 1 and "no price" in messages[0]


@pytest.mark.parametrize(
    "default", ['default = "gpt-4o"', "default = { input_per_1m = 2.5, output_per_1m = 10 }"]
)
def test_the_default_price_applies_to_unknown_models(default: str) -> None:
    table = parse_prices(f'[[api]]\nhost = "proxy.test"\nkind = "openai"\n{default}\n')
    rule = table.match("proxy.test", "/")
    assert rule is not None
    assert rule.cost(Usage("mystery", 1_000_000, 1_000_000)) == pytest.approx(12.5)
    assert rule.cost(Usage(None, 1_000_000, 0)) == pytest.approx(2.5)


def test_per_call_and_per_1k_bytes_add_up() -> None:
    rule = parse_prices(
        '[[api]]\nhost = "blob.test"\nkind = "per_call"\nper_call = 0.01\nper_1k_bytes = 0.002\n'
    ).match("blob.test", "/upload")
    assert rule is not None
    assert rule.cost(None, bytes_in=1500, bytes_out=500) == pytest.approx(0.01 + 2 * 0.002)
    only_bytes = parse_prices(
        '[[api]]\nhost = "b.test"\nkind = "per_call"\nper_1k_bytes = 1\n'
    ).match("b.test", "/")
    assert only_bytes is not None and only_bytes.cost(None, 1000, 0) == pytest.approx(1.0)


def test_matching_prefers_the_most_specific_host_then_the_longest_path() -> None:
    table = parse_prices(
        """
        [[api]]
        host = "*.example.com"
        kind = "per_call"
        per_call = 1
        [[api]]
        host = "*.eu.example.com"
        kind = "per_call"
        per_call = 2
        [[api]]
        host = "maps.eu.example.com"
        kind = "per_call"
        per_call = 3
        [[api]]
        host = "maps.eu.example.com:8443"
        kind = "per_call"
        per_call = 4
        [[api]]
        host = "maps.eu.example.com"
        path = "/v2/tiles/{z}/{x}"
        kind = "per_call"
        per_call = 5
        [[api]]
        host = "maps.eu.example.com"
        path = "/v2"
        kind = "per_call"
        per_call = 6
        """
    )

    def price(host: str, path: str = "/") -> float | None:
        rule = table.match(host, path)
        return None if rule is None else rule.per_call

    assert price("a.example.com") == 1
    assert price("a.b.example.com") == 1
    assert price("example.com") is None  # "*." needs a label in front
    assert price("x.eu.example.com") == 2
    assert price("Maps.EU.example.com") == 3
    assert price("maps.eu.example.com:8443") == 4
    assert price("maps.eu.example.com:9999") == 3
    assert price("maps.eu.example.com", "/v2/tiles/3/4/5.png") == 5
    assert price("maps.eu.example.com", "/v2/tiles") == 6
    assert price("maps.eu.example.com", "/v2") == 6
    assert price("maps.eu.example.com", "/v2x") == 3  # whole segments only
    assert price("maps.eu.example.com", "/v1/x") == 3
    # cached per host: the same answers a second time
    assert price("maps.eu.example.com", "/v2/tiles/3/4") == 5
    assert len(table) == 7  # six rules and the built-in OpenAI one


def test_paths_match_whole_segments_with_placeholders() -> None:
    rule = Rule("h", "/v1/users/{id}/orders/", "per_call", per_call=1.0)
    assert rule.matches_path("/v1/users/42/orders")
    assert rule.matches_path("/v1/users/42/orders/7")
    assert not rule.matches_path("/v1/users/42")
    assert not rule.matches_path("/v1/users/42/ordersx")
    assert Rule("h", "/", "per_call").matches_path("/anything")
    assert PriceTable([]).match("h", "/") is None


def test_usage_from_chat_completions_and_responses_bodies() -> None:
    chat = {
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"message": {"content": '"usage": {"prompt_tokens": 999}'}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
    }
    assert extract_usage(json.dumps(chat).encode()) == Usage("gpt-4o-mini-2024-07-18", 12, 30)
    responses = {"model": "o3", "usage": {"input_tokens": 5, "output_tokens": 7}}
    assert extract_usage(json.dumps(responses).encode()) == Usage("o3", 5, 7)
    embeddings = {"model": "text-embedding-3-small", "usage": {"prompt_tokens": 8}}
    assert extract_usage(json.dumps(embeddings).encode()) == Usage("text-embedding-3-small", 8, 0)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'{"usage": 3}', b'{"model": "m"}', b"\xff\xfe", b"{" * 100_000],
)
def test_bodies_without_usage_give_none(body: bytes) -> None:
    assert extract_usage(body) is None


def test_odd_usage_values_count_as_zero() -> None:
    body = b'{"model": 7, "usage": {"prompt_tokens": true, "completion_tokens": -4}}'
    assert extract_usage(body) == Usage(None, 0, 0)


def test_large_bodies_are_scanned_not_parsed() -> None:
    data = [{"embedding": [0.123456789] * 1000, "index": i} for i in range(40)]
    document = {
        "object": "list",
        "model": "text-embedding-3-large",
        "data": data,
        "usage": {"prompt_tokens": 321, "total_tokens": 321},
    }
    body = json.dumps(document).encode()
    assert len(body) > FULL_PARSE_MAX_BYTES
    assert extract_usage(body) == Usage("text-embedding-3-large", 321, 0)
    assert extract_usage(body[:-60]) is None  # cut inside the usage object


# ----------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "field", "line", "expected"),
    [
        ('[[api]]\nkind = "per_call"\nper_call = 1\n', "api[0].host", 1, "expected a host"),
        ('[[api]]\nhost = "https://x.com/v1"\nkind = "openai"\n', "api[0].host", 2, "bare host"),
        ('[[api]]\nhost = "a.*.com"\nkind = "openai"\n', "api[0].host", 2, "wildcard"),
        ('[[api]]\nhost = "x.com"\n', "api[0].kind", 1, "expected one of 'openai', 'per_call'"),
        ('[[api]]\nhost = "x.com"\nkind = "tokens"\n', "api[0].kind", 3, "got a string 'tokens'"),
        (
            '[[api]]\nhost = "x.com"\nkind = "per_call"\nper_call = -1\n',
            "api[0].per_call",
            4,
            "0 or more",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "per_call"\nper_call = nan\n',
            "api[0].per_call",
            4,
            "0 or more",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "per_call"\nper_call = "0.1"\n',
            "api[0].per_call",
            4,
            "expected a price in US dollars",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "per_call"\nper_cal = 1\n',
            "api[0].per_cal",
            4,
            "did you mean 'per_call'",
        ),
        ('[[api]]\nhost = "x.com"\nkind = "per_call"\n', "api[0].kind", 3, "needs 'per_call'"),
        (
            '[[api]]\nhost = "x.com"\nkind = "per_call"\nper_call = 1\n'
            '[api.models."m"]\ninput_per_1m = 1\n',
            "api[0].models",
            None,
            "needs kind = 'openai'",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "openai"\n'
            '[api.models."m"]\ninput_per_1m = 1\noutput_per_1n = 2\n',
            "api[0].models.m.output_per_1n",
            6,
            "did you mean 'output_per_1m'",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "openai"\n[api.models."m"]\noutput_per_1m = 2\n',
            "api[0].models.m",
            4,
            "missing input_per_1m",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "openai"\nmodels = 3\n',
            "api[0].models",
            4,
            "table of models",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "openai"\ndefault = "gpt-4o-mni"\n',
            "api[0].default",
            4,
            "did you mean 'gpt-4o-mini'",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "openai"\npath = "v1/chat"\n',
            "api[0].path",
            4,
            "starting with '/'",
        ),
        (
            '[[api]]\nhost = "x.com"\nkind = "openai"\n\n[[api]]\nhost = "X.com"\nkind = "openai"\n',
            "api[1].host",
            6,
            "duplicate rule",
        ),
        ('[api]\nhost = "x.com"\n', "api", 1, "expected an array of tables"),
        ('[apis]\nhost = "x.com"\n', "apis", 1, "did you mean 'api'"),
    ],
)
def test_errors_name_the_field_the_line_and_what_was_expected(
    text: str, field: str, line: int | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_prices(text, "prices.toml")
    error = info.value
    assert error.path == "prices.toml"
    assert error.field == field
    if line is not None:
        assert error.line == line
    assert expected in str(error)
    assert str(error).startswith("prices.toml:")


def test_syntax_errors_and_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[api]]\nhost = "x.com\n')
    with pytest.raises(ConfigError) as info:
        load_prices(str(bad))
    assert info.value.line == 2 and "invalid TOML" in str(info.value)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'[[api]]\nhost = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_prices(str(binary))
    assert info.value.line == 2
    with pytest.raises(ConfigError, match="cannot read price table"):
        load_prices(str(tmp_path / "missing.toml"))


# ------------------------------------------------------------------------- fuzz

_KEYS = ["host", "path", "kind", "per_call", "per_1k_bytes", "default", "models", "input_per_1m",
         "output_per_1m", "api", "x"]  # fmt: skip
_SAMPLE_VALUES = ['"api.openai.com"', '"*.x.com"', '"openai"', '"per_call"', '"/v1"',
                  '"gpt-4o"', "1", "-1", "0.5", "nan", "inf", "true", "[]", "{}", '""',
                  "{ input_per_1m = 1 }", '"a b"', "1979-05-27", "[1, 2]"]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(_SAMPLE_VALUES),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=10).map(json.dumps),
)
_LINES = st.one_of(
    st.just("[[api]]"),
    st.just('[api.models."gpt-4o"]'),
    st.sampled_from(["[api]", "[x]", "[api.models]", "[[api.models]]", "[api.default]"]),
    st.tuples(st.sampled_from(_KEYS), _VALUES).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES, max_size=14))
def test_fuzz_structured_tables_raise_only_config_errors(lines: list[str]) -> None:
    try:
        table = parse_prices("\n".join(lines), "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml")
        return
    for rule in table.rules:
        rule.cost(Usage("gpt-4o", 10, 10), 10, 10)
        table.match(rule.host.lstrip("*."), "/v1/x")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_any_file_raises_only_config_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "prices.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_prices(str(path))
