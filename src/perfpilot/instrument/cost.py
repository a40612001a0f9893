"""The price table: what an outbound API call costs.

A TOML file (settings ``prices``) lists rules, one ``[[api]]`` table each::

    [[api]]
    host = "api.openai.com"          # exact host (or host:port), or "*.example.com"
    path = "/v1/chat/completions"    # optional: a path prefix, "{id}" matches one segment
    kind = "openai"                  # usage-based: prices per 1M tokens, by model
    default = "gpt-4o-mini"          # optional: price of models not listed
    [api.models."gpt-4o-mini"]
    input_per_1m = 0.15
    output_per_1m = 0.60

    [[api]]
    host = "maps.example.com"
    kind = "per_call"                # a fixed price per call
    per_call = 0.005
    per_1k_bytes = 0.0001            # optional, any kind: per 1000 bytes sent + received

Rules:

* **Matching.** A call matches the rule with the most specific host (exact
  ``host:port``, then the bare host, then the longest ``*.`` suffix; ``*.x.com``
  does not match ``x.com`` itself), then the longest matching ``path``. Paths
  match whole segments: ``/v1/chat`` matches ``/v1/chat/completions``, not
  ``/v1/chatter``. Hosts are compared case-insensitively.
* **openai** rules price token usage read from OpenAI-compatible JSON
  responses (``model`` and ``usage.prompt_tokens``/``completion_tokens``, or
  ``usage.input_tokens``/``output_tokens``, as the Responses API and
  Anthropic's Messages API report them). A model is priced by its exact
  name, else by the longest listed name it starts with followed by ``-``
  (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``), else by ``default``, else it
  costs 0 and a warning is logged once. ``default`` is a model name, or a
  table ``{input_per_1m = ..., output_per_1m = ...}``. The built-in OpenAI
  prices (:data:`OPENAI_PRICES`) apply under every ``openai`` rule; listed
  models override them.
* Only calls that got a response below 400 cost anything.
* Without a rule of its own for ``api.openai.com``, a table has the built-in
  rule for it, so OpenAI calls are priced with no configuration at all.

Parsing is strict: a wrong file raises :class:`~perfpilot.errors.ConfigError`
naming the file, the line (when it can be found), the field and what was
expected. :func:`load_prices` runs once, at install time; :meth:`PriceTable.match`
and :meth:`Rule.cost` run per call and stay cheap (a dict lookup by host).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from perfpilot.errors import ConfigError
from perfpilot.instrument.context import warn_once
from perfpilot.tomlfile import parse_toml, read_text

KINDS = ("openai", "per_call")
RULE_FIELDS = ("default", "host", "kind", "models", "path", "per_1k_bytes", "per_call")
MODEL_FIELDS = ("input_per_1m", "output_per_1m")

# Example prices in US dollars per 1M tokens (input, output), from
# https://openai.com/api/pricing as of August 2025. They change: override
# them in your table ([api.models."<name>"]) when they do.
OPENAI_PRICES_AS_OF = "2025-08"
OPENAI_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
}
OPENAI_HOST = "api.openai.com"

# Bodies up to this size are parsed whole; larger ones (embeddings) are
# scanned for the top-level "model" and the last "usage" object only.
FULL_PARSE_MAX_BYTES = 256 * 1024
_MAX_MODEL_CACHE = 512
_MAX_HOST_CACHE = 4096


@dataclasses.dataclass(frozen=True)
class ModelPrice:
    """US dollars per one million tokens."""

    input_per_1m: float
    output_per_1m: float = 0.0


@dataclasses.dataclass(frozen=True)
class Usage:
    """What one call used, as far as the response says.

    Attributes:
        model: The model that answered, when the API reports one.
        prompt_tokens: Input tokens.
        completion_tokens: Output tokens.
    """

    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclasses.dataclass(frozen=True)
class Rule:
    """One ``[[api]]`` entry of the price table.

    Attributes:
        host: Lower-case host, ``host:port``, or ``*.suffix``.
        path: Path prefix (whole segments, ``{name}`` matches any one), or ``None``.
        kind: ``openai`` (token usage by model) or ``per_call``.
        models: Prices by model name (``openai`` rules).
        default: Price of models not in ``models``.
        per_call: US dollars per call.
        per_1k_bytes: US dollars per 1000 bytes of request and response body.
    """

    host: str
    path: str | None = None
    kind: str = "per_call"
    models: Mapping[str, ModelPrice] = dataclasses.field(default_factory=dict)
    default: ModelPrice | None = None
    per_call: float = 0.0
    per_1k_bytes: float = 0.0
    _segments: tuple[str, ...] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )
    _model_cache: dict[str, ModelPrice | None] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.path is not None:
            object.__setattr__(self, "_segments", _split(self.path))

    @property
    def usage_based(self) -> bool:
        """The cost depends on the response body (token usage)."""
        return self.kind == "openai"

    def matches_path(self, path: str) -> bool:
        """Whether ``path`` (no query string) falls under this rule's ``path``."""
        want = self._segments
        if not want:
            return True
        have = _split(path)
        if len(have) < len(want):
            return False
        for pattern, segment in zip(want, have, strict=False):
            if pattern != segment and not (pattern[:1] == "{" and pattern[-1:] == "}"):
                return False
        return True

    def model_price(self, model: str) -> ModelPrice | None:
        """The price of ``model``: exact name, longest ``name-`` prefix, or ``default``."""
        cache = self._model_cache
        try:
            return cache[model]
        except KeyError:
            pass
        price = self.models.get(model)
        if price is None:
            best = ""
            for name in self.models:
                if len(name) > len(best) and model.startswith(name + "-"):
                    best = name
            price = self.models[best] if best else self.default
        if len(cache) >= _MAX_MODEL_CACHE:
            cache.clear()
        cache[model] = price
        return price

    def cost(self, usage: Usage | None, bytes_in: int = 0, bytes_out: int = 0) -> float:
        """US dollars for one successful call that used ``usage``."""
        total = self.per_call
        if self.per_1k_bytes:
            total += (bytes_in + bytes_out) / 1000 * self.per_1k_bytes
        if usage is not None and self.kind == "openai" and usage.model is not None:
            price = self.model_price(usage.model)
            if price is None:
                warn_once(
                    f"price-model-{self.host}-{usage.model}",
                    "perfpilot: no price for model %r at %s; its calls count as free "
                    "(add [api.models.%r] or 'default' to the price table)",
                    usage.model,
                    self.host,
                    usage.model,
                )
            else:
                total += (
                    usage.prompt_tokens * price.input_per_1m
                    + usage.completion_tokens * price.output_per_1m
                ) / 1_000_000
        elif usage is not None and self.kind == "openai" and self.default is not None:
            total += (
                usage.prompt_tokens * self.default.input_per_1m
                + usage.completion_tokens * self.default.output_per_1m
            ) / 1_000_000
        return total


def _split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


class PriceTable:
    """Rules by host, for fast matching of every outbound call.

    Args:
        rules: The rules, in file order (earlier wins a tie).
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._exact: dict[str, list[Rule]] = {}
        self._wildcard: list[tuple[str, list[Rule]]] = []
        wildcard: dict[str, list[Rule]] = {}
        for rule in self.rules:
            if rule.host.startswith("*."):
                wildcard.setdefault(rule.host[1:], []).append(rule)
            else:
                self._exact.setdefault(rule.host, []).append(rule)
        for group in (*self._exact.values(), *wildcard.values()):
            group.sort(key=lambda r: -len(r._segments or ()))  # stable: file order on ties
        self._wildcard = sorted(wildcard.items(), key=lambda item: -len(item[0]))
        self._by_host: dict[str, tuple[Rule, ...]] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, host: str, path: str) -> Rule | None:
        """The rule pricing a call to ``host`` (``host[:port]``) and ``path``, if any."""
        candidates = self._by_host.get(host)
        if candidates is None:
            candidates = self._candidates(host)
        if not candidates:
            return None
        for rule in candidates:
            if rule._segments is None or rule.matches_path(path):
                return rule
        return None

    def _candidates(self, host: str) -> tuple[Rule, ...]:
        lower = host.lower()
        bare = _strip_port(lower)
        found: list[Rule] = []
        found.extend(self._exact.get(lower, ()))
        if bare != lower:
            found.extend(self._exact.get(bare, ()))
        for suffix, rules in self._wildcard:
            if bare.endswith(suffix) and len(bare) > len(suffix):
                found.extend(rules)
        candidates = tuple(found)
        if len(self._by_host) >= _MAX_HOST_CACHE:
            self._by_host.clear()
        self._by_host[host] = candidates
        return candidates


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    head, sep, tail = host.rpartition(":")
    return head if sep and tail.isdigit() else host


def builtin_openai_rule() -> Rule:
    """The rule for ``api.openai.com`` with the built-in example prices."""
    return Rule(OPENAI_HOST, None, "openai", _builtin_models())


def _builtin_models() -> dict[str, ModelPrice]:
    return {name: ModelPrice(i, o) for name, (i, o) in OPENAI_PRICES.items()}


def default_prices() -> PriceTable:
    """The table used without a price file: OpenAI at the built-in example prices."""
    return PriceTable([builtin_openai_rule()])


# ---------------------------------------------------------------- usage extraction

_MODEL_RE = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.){1,200})"')
_USAGE_RE = re.compile(rb'"usage"\s*:\s*')


def extract_usage(body: bytes) -> Usage | None:
    """Token usage from an OpenAI-compatible JSON response body, or ``None``.

    Reads ``model`` and ``usage`` (``prompt_tokens``/``completion_tokens`` or
    ``input_tokens``/``output_tokens``). Bodies larger than
    :data:`FULL_PARSE_MAX_BYTES` are not parsed whole: the first ``"model"``
    string and the last ``"usage"`` object are read from the text. Never raises.
    """
    try:
        if len(body) <= FULL_PARSE_MAX_BYTES:
            document = json.loads(body)
            if not isinstance(document, dict):
                return None
            model = document.get("model")
            usage = document.get("usage")
        else:
            model, usage = _scan(body)
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        completion = usage.get("completion_tokens", usage.get("output_tokens"))
        return Usage(
            model if isinstance(model, str) and model else None,
            _count(prompt),
            _count(completion),
        )
    except (ValueError, TypeError, RecursionError):  # not JSON, or not the expected shape
        return None


def _scan(body: bytes) -> tuple[Any, Any]:
    model: Any = None
    found = _MODEL_RE.search(body)
    if found is not None:
        model = json.loads(b'"' + found.group(1) + b'"')
    usage: Any = None
    at = body.rfind(b'"usage"')
    if at >= 0:
        head = _USAGE_RE.match(body, at)
        if head is not None:
            tail = body[head.end() :].decode("utf-8", "replace")
            usage, _ = json.JSONDecoder().raw_decode(tail)
    return model, usage


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


# ------------------------------------------------------------------------- parsing


def load_prices(path: str) -> PriceTable:
    """Read the price table at ``path`` (see the module docstring for the format).

    Raises:
        ConfigError: The file cannot be read, is not TOML, or a rule is wrong;
            the error names the file, the line when known, the field, and what
            was expected.
    """
    return parse_prices(read_text(path, "price table"), path)


def parse_prices(text: str, path: str = "<prices>") -> PriceTable:
    """Parse price-table TOML ``text`` read from ``path`` (see :func:`load_prices`)."""
    document = parse_toml(text, path)
    return PriceTable(_Parser(text, path).rules(document))


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self._lines = text.splitlines()

    def error(self, message: str, field: tuple[str | int, ...]) -> ConfigError:
        name = ""
        for part in field:
            name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
        return ConfigError(message, path=self.path, line=self._line(field), field=name or None)

    def rules(self, document: dict[str, Any]) -> list[Rule]:
        for key in document:
            if key != "api":
                raise self.error(
                    f"unknown entry{_suggest(key, ('api',))}; expected [[api]] tables", (key,)
                )
        entries = document.get("api", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise self.error("expected an array of tables ([[api]])", ("api",))
        rules: list[Rule] = []
        seen: dict[tuple[str, str | None], int] = {}
        for index, entry in enumerate(entries):
            rule = self.rule(entry, index)
            where = (rule.host, rule.path.rstrip("/") if rule.path else None)
            if where in seen:
                raise self.error(
                    f"duplicate rule for host {rule.host!r} and path {rule.path!r} "
                    f"(first in api[{seen[where]}])",
                    ("api", index, "host"),
                )
            seen[where] = index
            rules.append(rule)
        if not any(rule.host == OPENAI_HOST for rule in rules):
            rules.append(builtin_openai_rule())
        return rules

    def rule(self, entry: dict[str, Any], index: int) -> Rule:
        where: tuple[str | int, ...] = ("api", index)
        for key in entry:
            if key not in RULE_FIELDS:
                raise self.error(
                    f"unknown field{_suggest(key, RULE_FIELDS)}; "
                    f"expected one of {', '.join(RULE_FIELDS)}",
                    (*where, key),
                )
        host = self.host(entry.get("host"), (*where, "host"))
        path = entry.get("path")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise self.error(
                f"expected a path starting with '/', got {_describe(path)}", (*where, "path")
            )
        if path is not None and ("?" in path or "#" in path):
            raise self.error("expected a path without '?' or '#'", (*where, "path"))
        kind = entry.get("kind")
        if kind not in KINDS:
            got = "nothing" if kind is None else _describe(kind)
            raise self.error(
                f"expected one of {', '.join(repr(k) for k in KINDS)}, got {got}",
                (*where, "kind"),
            )
        per_call = self.price(entry.get("per_call", 0.0), (*where, "per_call"))
        per_1k = self.price(entry.get("per_1k_bytes", 0.0), (*where, "per_1k_bytes"))
        models: dict[str, ModelPrice] = {}
        default: ModelPrice | None = None
        if kind == "openai":
            models = _builtin_models()
            listed = entry.get("models", {})
            if not isinstance(listed, dict):
                raise self.error(
                    f"expected a table of models, got {_describe(listed)}", (*where, "models")
                )
            for name, value in listed.items():
                models[name] = self.model(value, (*where, "models", name))
            default = self.default(entry.get("default"), models, (*where, "default"))
        else:
            for key in ("models", "default"):
                if key in entry:
                    raise self.error(
                        f"'{key}' needs kind = 'openai' (this rule is {kind!r})", (*where, key)
                    )
            if "per_call" not in entry and "per_1k_bytes" not in entry:
                raise self.error(
                    "a per_call rule needs 'per_call' or 'per_1k_bytes' (US dollars)",
                    (*where, "kind"),
                )
        return Rule(host, path, kind, models, default, per_call, per_1k)

    def host(self, value: object, field: tuple[str | int, ...]) -> str:
        if not isinstance(value, str) or not value.strip():
            got = "nothing" if value is None else _describe(value)
            raise self.error(
                f"expected a host name such as 'api.example.com' or '*.example.com', got {got}",
                field,
            )
        host = value.strip().lower()
        bad = next((c for c in host if c in "/?#@ \t" or ord(c) < 32), None)
        if bad is not None or "://" in host:
            raise self.error(
                f"expected a bare host (no scheme, path or credentials), got {value!r}", field
            )
        if "*" in host and (not host.startswith("*.") or "*" in host[2:] or len(host) < 3):
            raise self.error(f"a wildcard host looks like '*.example.com', got {value!r}", field)
        return host

    def price(self, value: object, field: tuple[str | int, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(
                f"expected a price in US dollars (a number), got {_describe(value)}", field
            )
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise self.error(f"expected a price of 0 or more, got {value!r}", field)
        return number

    def model(self, value: object, field: tuple[str | int, ...]) -> ModelPrice:
        if not isinstance(value, dict):
            raise self.error(
                "expected a table {input_per_1m = ..., output_per_1m = ...}, "
                f"got {_describe(value)}",
                field,
            )
        for key in value:
            if key not in MODEL_FIELDS:
                raise self.error(
                    f"unknown field{_suggest(key, MODEL_FIELDS)}; "
                    f"expected {' or '.join(MODEL_FIELDS)}",
                    (*field, key),
                )
        if "input_per_1m" not in value:
            raise self.error("missing input_per_1m (US dollars per 1M input tokens)", field)
        return ModelPrice(
            self.price(value["input_per_1m"], (*field, "input_per_1m")),
            self.price(value.get("output_per_1m", 0.0), (*field, "output_per_1m")),
        )

    def default(
        self, value: object, models: Mapping[str, ModelPrice], field: tuple[str | int, ...]
    ) -> ModelPrice | None:
        if value is None:
            return None
        if isinstance(value, str):
            price = models.get(value)
            if price is None:
                raise self.error(
                    f"unknown model {value!r}{_suggest(value, models)}; name a model of this "
                    "rule or of the built-in prices, or give a table {input_per_1m = ...}",
                    field,
                )
            return price
        return self.model(value, field)

    def _line(self, field: tuple[str | int, ...]) -> int | None:
        """Best effort: the line of ``field`` when the file uses ``[[api]]`` headers."""
        try:
            return self._find_line(field)
        except Exception:  # a locating aid only, never a reason to fail
            return None

    def _find_line(self, field: tuple[str | int, ...]) -> int | None:
        lines = self._lines
        if len(field) < 2 or field[0] != "api" or not isinstance(field[1], int):
            if field and isinstance(field[0], str):
                return _first(lines, _key_or_table(field[0]), 0, len(lines))
            return None
        headers = [i for i, line in enumerate(lines) if _AOT_API.match(line)]
        if field[1] >= len(headers):
            return _first(lines, _key_or_table("api"), 0, len(lines))
        start = headers[field[1]]
        end = headers[field[1] + 1] if field[1] + 1 < len(headers) else len(lines)
        rest = field[2:]
        if not rest:
            return start + 1
        if rest[0] == "models" and len(rest) >= 2 and isinstance(rest[1], str):
            name = re.escape(rest[1])
            table = re.compile(
                rf"""^\s*\[\s*api\s*\.\s*models\s*\.\s*(?:"{name}"|'{name}'|{name})\s*\]"""
            )
            at = _first(lines, table, start, end)
            if at is not None and len(rest) >= 3 and isinstance(rest[2], str):
                return _first(lines, _key(rest[2]), at, end) or at
            if at is not None:
                return at
            inline = re.compile(rf"""^\s*(?:models\s*\.\s*)?(?:"{name}"|'{name}'|{name})\s*=""")
            return _first(lines, inline, start, end) or start + 1
        if isinstance(rest[0], str):
            return _first(lines, _key(rest[0]), start, end) or start + 1
        return start + 1


_AOT_API = re.compile(r"""^\s*\[\[\s*(?:api|"api"|'api')\s*\]\]""")


def _key(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf"""^\s*(?:"{quoted}"|'{quoted}'|{quoted})\s*=""")


def _key_or_table(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf"""^\s*(?:\[\[?\s*)?(?:"{quoted}"|'{quoted}'|{quoted})\s*(?:=|\]|\.)""")


def _first(lines: list[str], pattern: re.Pattern[str], start: int, end: int) -> int | None:
    for i in range(start, end):
        if pattern.match(lines[i]):
            return i + 1
    return None


def _suggest(word: str, choices: Sequence[str] | Mapping[str, Any]) -> str:
    shown = f" '{word}'" if len(word) <= 40 else ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"{shown} (did you mean '{close[0]}'?)" if close else shown


def _describe(value: object) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)  # fmt: skip
    if isinstance(value, dict | list):
        return kind
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"
