"""Rules the providers enforce on their own request shapes, as data.

Each provider package keeps a `RuleTable`: rules for every model, and rules per model
family (keyed by model-name prefix; the longest matching prefix wins, an unknown model
gets the defaults). Every rule names the native field it is about, the field of the
OpenAI body it comes from (for our messages), the words the provider answers with, and
where the provider documents it.

The same table is read twice: by translation, which checks every translated request
before anything is sent (so a refused request never leaves), and by the emulator, which
refuses the same request with the provider's own error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Body = Mapping[str, Any]
# Models whose sorted-out rules a table keeps.
_COMPILED_MODELS = 256


@dataclass(frozen=True, slots=True)
class Violation:
    """A request breaking a rule: what to tell our user and what the provider says."""

    field: str  # the OpenAI body's field (for our message)
    why: str
    provider_message: str  # the provider's words, for the emulator's error
    source: str
    code: str | None = None  # the provider's error code, where its errors carry one


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule. `test(request)` returns a list of problems (native paths with details)."""

    test: Callable[[Body], Sequence[str]]
    field: str
    why: str
    provider_message: str
    source: str
    # True when the rule comes from errors seen from the live API (quoted in public issue
    # threads) rather than from the provider's documentation or SDK types.
    observed: bool = False
    code: str | None = None
    # The top-level request fields `test` reads, when it finds nothing without one of
    # them: the rule is then skipped for requests that have none (most requests carry a
    # handful of fields, and a table has dozens of rules). None: always tested.
    keys: frozenset[str] | None = None

    def violations(self, request: Body, model: str = "") -> Iterator[Violation]:
        for detail in self.test(request):
            message = self.provider_message.format(detail=detail, model=model)
            why = self.why.format(detail=detail, model=model or "this model")
            yield Violation(self.field, why, message, self.source, self.code)


@dataclass(frozen=True, slots=True)
class Family:
    """Rules for the models whose names start with `prefix`."""

    prefix: str
    rules: tuple[Rule, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class _ModelRules:
    """A model's rules, ready to test: `always` and, per top-level field, the rules only
    that field can trigger; each with its position, so violations keep the table's order."""

    name: str
    always: tuple[tuple[int, Rule], ...]
    by_key: dict[str, tuple[tuple[int, Rule], ...]]


@dataclass(frozen=True, slots=True)
class RuleTable:
    provider: str
    defaults: tuple[Rule, ...]
    families: tuple[Family, ...] = field(default=())
    # Per model name: its rules, sorted out once (a file of a million lines names a few
    # models). Bounded, so a caller naming endless models cannot grow it without limit.
    _compiled: dict[str, _ModelRules] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def family(self, model: str) -> Family | None:
        name = bare_model(model)
        found = [f for f in self.families if name.startswith(f.prefix)]
        return max(found, key=lambda f: len(f.prefix)) if found else None

    def rules_for(self, model: str) -> tuple[Rule, ...]:
        family = self.family(model)
        return self.defaults + (family.rules if family else ())

    def violations(self, request: Body, model: str) -> list[Violation]:
        compiled = self._compiled.get(model) or self._compile(model)
        found = list(compiled.always)
        by_key = compiled.by_key
        for key in request:
            hit = by_key.get(key)
            if hit:
                found += hit
        if not found:
            return []
        if len(found) > 1:
            # A rule reading several fields is listed under each: test it once.
            found = sorted(dict(found).items(), key=lambda item: item[0])
        name = compiled.name
        return [v for _, rule in found for v in rule.violations(request, name)]

    def _compile(self, model: str) -> _ModelRules:
        always: list[tuple[int, Rule]] = []
        by_key: dict[str, list[tuple[int, Rule]]] = {}
        for position, rule in enumerate(self.rules_for(model)):
            if rule.keys is None:
                always.append((position, rule))
            else:
                for key in rule.keys:
                    by_key.setdefault(key, []).append((position, rule))
        compiled = _ModelRules(
            bare_model(model), tuple(always), {k: tuple(v) for k, v in by_key.items()}
        )
        if len(self._compiled) >= _COMPILED_MODELS:
            self._compiled.clear()
        self._compiled[model] = compiled
        return compiled


def lookup(request: Body, path: str) -> Any:
    """The value at a dotted path (`generationConfig.topK`), or None."""
    value: Any = request
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def top_key(path: str) -> frozenset[str]:
    """The top-level field of a dotted path, as a rule's `keys`."""
    return frozenset((path.partition(".")[0],))


def bare_model(model: str) -> str:
    """`models/gemini-2.5-pro` or `anthropic/claude-x` -> the model's own name."""
    return model.rsplit("/", 1)[-1]


# -- rule builders: the shapes of rule the providers have --------------------------------


def together(
    fields: tuple[str, str],
    *,
    field: str,
    why: str,
    provider_message: str,
    source: str,
    observed: bool = False,
) -> Rule:
    """Both native fields (dotted paths) may not be sent in one request."""
    a, b = fields

    def test(request: Body) -> list[str]:
        both = lookup(request, a) is not None and lookup(request, b) is not None
        return [f"{a}, {b}"] if both else []

    return Rule(test, field, why, provider_message, source, observed, keys=top_key(a))


def requires(
    name: str,
    other: str,
    *,
    field: str,
    why: str,
    provider_message: str,
    source: str,
    observed: bool = False,
) -> Rule:
    """`name` may only be sent with a non-empty `other` (dotted paths)."""

    def test(request: Body) -> list[str]:
        return [name] if lookup(request, name) is not None and not lookup(request, other) else []

    return Rule(test, field, why, provider_message, source, observed, keys=top_key(name))


def absent(
    name: str,
    *,
    field: str,
    why: str,
    provider_message: str,
    source: str,
    observed: bool = False,
    code: str | None = None,
) -> Rule:
    """The native field (a dotted path) is refused by these models, whatever its value."""

    def test(request: Body) -> list[str]:
        return [name] if lookup(request, name) is not None else []

    return Rule(test, field, why, provider_message, source, observed, code, keys=top_key(name))


def each(
    path: Callable[[Body], Iterator[tuple[str, Any]]],
    ok: Callable[[Any], bool],
    *,
    field: str,
    why: str,
    provider_message: str,
    source: str,
    observed: bool = False,
) -> Rule:
    """Every value `path` finds must satisfy `ok`; `path` yields (where, value) pairs."""

    def test(request: Body) -> list[str]:
        return [where for where, value in path(request) if not ok(value)]

    return Rule(test, field, why, provider_message, source, observed)


def matches(pattern: str) -> Callable[[Any], bool]:
    compiled = re.compile(pattern)
    return lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None


def list_items(name: str) -> Callable[[Body], Iterator[tuple[str, Any]]]:
    """The items of a native list field (a dotted path), with their paths."""

    def walk(request: Body) -> Iterator[tuple[str, Any]]:
        values = lookup(request, name)
        if isinstance(values, list):
            for i, value in enumerate(values):
                yield f"{name}.{i}", value

    return walk


def describe(table: RuleTable) -> list[str]:
    """Markdown lines naming every rule of `table`, the models it applies to and its
    source (the README's provider rules are generated from this)."""
    families: dict[int, list[str]] = {}
    for family in table.families:
        for rule in family.rules:
            families.setdefault(id(rule), []).append(family.note)
    lines: list[str] = []
    seen: set[int] = set()
    for rule in (*table.defaults, *(r for f in table.families for r in f.rules)):
        if id(rule) in seen:
            continue
        seen.add(id(rule))
        models = "every model" if rule in table.defaults else "; ".join(families[id(rule)])
        kind = "observed" if rule.observed else "documented"
        # The details (a path in the request) are the one thing a table row cannot show.
        why = re.sub(r" \([^)]*\{detail\}[^)]*\)", "", rule.why).replace("{model}", "the model")
        lines.append(f"- `{rule.field}` ({models}): {why}. Source ({kind}): {rule.source}.")
    return lines


def readme_section(specs: Sequence[Any]) -> str:
    """The README's list of rules, for every provider spec that names a rule table."""
    from unibatch.providers.spec import load_object

    out: list[str] = []
    for spec in specs:
        if spec.rules:
            out += [f"**{spec.name}**", "", *describe(load_object(spec.rules)), ""]
    return "\n".join(out).rstrip() + "\n"
