"""Featurization: VW text lines for contexts and actions, injective escaping."""

import functools
import math
import struct
from urllib.parse import unquote

import pytest
import vowpalwabbit
from hypothesis import given, settings
from hypothesis import strategies as st

from hpe_core.decide import features
from hpe_core.decide.features import ActionCatalog, adf_example, context_features

CONTEXT_NS = ord(features.CONTEXT_NAMESPACE)
ACTION_NS = ord(features.ACTION_NAMESPACE)
CONSTANT_NS = 128  # VW's namespace of the bias feature it adds to every example


@functools.cache
def _vw() -> vowpalwabbit.Workspace:
    # One parser for the whole module: hypothesis runs hundreds of examples.
    return vowpalwabbit.Workspace("--cb_explore_adf --quiet -q ca")


def _parsed(lines: list[str]) -> list[dict[int, list[float]]]:
    """Parse lines with VW and return, per line, {namespace: [feature values]}."""
    vw = _vw()
    examples = vw._parse("\n".join(lines))
    try:
        out = []
        for ex in examples:
            namespaces = {}
            for i in range(ex.num_namespaces()):
                ns = ex.namespace(i)
                count = ex.num_features_in(ns)
                namespaces[ns] = [ex.feature_weight(ns, j) for j in range(count)]
            out.append(namespaces)
        return out
    finally:
        vw._finish_example_multi_ex(examples)


# --- a reference of the documented canonical form, written independently of the module ---


def _number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    value = float(value)
    if abs(value) < features.NUMBER_EPSILON:
        return None
    return max(-features.NUMBER_LIMIT, min(features.NUMBER_LIMIT, value))


def _tag(item):
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, str):
        return item
    if isinstance(item, float):
        return repr(item) if math.isfinite(item) else None
    if isinstance(item, int):
        return str(item)
    return None


def _expected(context, path=(), depth=0, out=None):
    """Return the canonical features: (key path, "=" or ":", value)."""
    out = [] if out is None else out
    for key, value in context.items():
        if len(out) >= features.MAX_FEATURES:
            break
        name = (*path, key)
        named = name != ("",)
        if value is None:
            continue
        if isinstance(value, bool):
            if named:
                out.append((name, "=", "true" if value else "false"))
        elif isinstance(value, int | float):
            number = _number(value)
            if number is not None and named:
                out.append((name, ":", number))
        elif isinstance(value, str):
            if named:
                out.append((name, "=", value))
        elif isinstance(value, dict):
            if depth + 1 < features.MAX_DEPTH:
                _expected(value, name, depth + 1, out)
        elif isinstance(value, list) and named:
            seen = []
            for item in value:
                tag = _tag(item)
                if tag is not None and tag not in seen and len(out) < features.MAX_FEATURES:
                    seen.append(tag)
                    out.append((name, "=", tag))
    return out


def _decode(token: str):
    """Invert the escaping of one token back to (key path, separator, value)."""
    cut = min(i for i in (token.find("="), token.find(":")) if i >= 0)
    name, sep, value = token[:cut], token[cut], token[cut + 1 :]
    path = tuple(unquote(part, errors="surrogatepass") for part in name.split("."))
    if sep == ":":
        return path, sep, float(value)
    return path, sep, unquote(value, errors="surrogatepass")


def _tokens(shared_line: str) -> list[str]:
    prefix = "shared |c"
    assert shared_line.startswith(prefix)
    return shared_line[len(prefix) :].split()


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


_keys = st.text(max_size=8)
_scalars = (
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats() | st.text(max_size=20)
)
_leaves = _scalars | st.lists(_scalars | st.dictionaries(_keys, _scalars, max_size=2), max_size=3)
# Three levels of nesting, drawn without st.recursive: it is several times slower to draw.
_values = _leaves | st.dictionaries(
    _keys, _leaves | st.dictionaries(_keys, _scalars, max_size=2), max_size=3
)
_contexts = st.dictionaries(_keys, _values, max_size=8)


@settings(max_examples=200, deadline=None)
@given(_contexts)
def test_any_context_parses_into_exactly_its_features(context):
    """Every JSON context gives exactly its canonical features, all in namespace c."""
    line = context_features(context)
    expected = _expected(context)
    (shared,) = _parsed([line, "|a id=x"])[:1]
    assert set(shared) - {CONSTANT_NS} == ({CONTEXT_NS} if expected else set())
    weights = shared.get(CONTEXT_NS, [])
    assert len(weights) == len(expected)
    for weight, (_, sep, value) in zip(weights, expected, strict=True):
        assert weight == (pytest.approx(_float32(value), rel=1e-6) if sep == ":" else 1.0)
    decoded = [_decode(t) for t in _tokens(line)]
    assert decoded == expected


# A tiny alphabet of separator look-alikes, so that pairs often nearly collide.
_near_text = st.text(alphabet="a.=:% 1", max_size=3)
_near_scalars = st.none() | st.booleans() | st.sampled_from([0, 1, 1.5, -1]) | _near_text
_near_contexts = st.dictionaries(
    _near_text,
    _near_scalars
    | st.lists(_near_scalars, max_size=3)
    | st.dictionaries(_near_text, _near_scalars, max_size=2),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(_near_contexts, _near_contexts)
def test_distinct_contexts_give_distinct_tokens(first, second):
    """Two contexts share their token multiset only if their canonical features are equal."""
    same_tokens = sorted(_tokens(context_features(first))) == sorted(
        _tokens(context_features(second))
    )
    same_features = sorted(map(repr, _expected(first))) == sorted(map(repr, _expected(second)))
    assert same_tokens == same_features


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"a": {"b": "x"}}, {"a.b": "x"}),
        ({"a=b": "c"}, {"a": "b=c"}),
        ({"a": "1"}, {"a": 1}),
        ({"a:1": "x"}, {"a": "1:x"}),
        ({"k": "%20"}, {"k": " "}),
        ({"k": ["x y"]}, {"k": ["x", "y"]}),
    ],
)
def test_near_collisions_stay_distinct(first, second):
    """Nested vs dotted keys, separators inside names and escape look-alikes never collide."""
    assert context_features(first) != context_features(second)


@pytest.mark.parametrize(
    "hostile",
    [
        "x |a id=other 1:0:1",
        "x\nshared |c injected",
        "x\r\n\n0:-1:0.5 |a",
        "x\tk:1e30",
        "x\u2028\u00a0\x0b\x0c\x00y",
        "\ud800lone surrogate",
    ],
)
def test_hostile_values_stay_one_feature(hostile):
    """Separators, newlines, labels and odd whitespace in a value cannot inject anything."""
    lines = adf_example(context_features({hostile: hostile}), ["|a id=x", "|a id=y"])
    parsed = _parsed(lines)
    assert len(parsed) == 3
    assert parsed[0][CONTEXT_NS] == [1.0]
    assert set(parsed[0]) == {CONTEXT_NS, CONSTANT_NS}


def test_context_features_renders_types():
    """Numbers are numeric, strings and booleans categorical, lists tags, None dropped."""
    line = context_features(
        {
            "device": "mobile",
            "hour": 21,
            "score": 0.5,
            "vip": True,
            "tags": ["a", "b", "a"],
            "geo": {"country": "FR"},
            "missing": None,
            "zero": 0,
            "bad": float("nan"),
        }
    )
    assert line == (
        "shared |c device=mobile hour:21 score:0.5 vip=true tags=a tags=b geo.country=FR"
    )


def test_empty_context_has_no_features():
    """An empty context is a bare shared line that VW accepts."""
    assert context_features({}) == "shared |c"
    assert CONTEXT_NS not in _parsed(["shared |c", "|a id=x"])[0]


def test_feature_count_is_capped():
    """A context with thousands of keys yields at most MAX_FEATURES features."""
    context = {f"k{i}": i + 1 for i in range(5000)}
    context["list"] = [str(i) for i in range(5000)]
    assert len(_tokens(context_features(context))) == features.MAX_FEATURES


def test_deep_nesting_is_cut_at_max_depth():
    """Objects nested deeper than MAX_DEPTH are ignored instead of recursed into."""
    deep = {"leaf": 1}
    for _ in range(1000):
        deep = {"k": deep, "leaf": 1}
    names = [t.split(":")[0] for t in _tokens(context_features(deep))]
    expected = [".".join(["k"] * depth + ["leaf"]) for depth in range(features.MAX_DEPTH)]
    assert sorted(names) == sorted(expected)


def test_long_strings_are_cut_but_stay_distinct():
    """Long names and values are bounded in size and still distinguishable."""
    long_a, long_b = "v" * 100_000 + "a", "v" * 100_000 + "b"
    line_a = context_features({long_a: long_a})
    line_b = context_features({long_b: long_b})
    assert len(line_a) < 4 * features.MAX_TEXT
    assert line_a != line_b


def test_huge_numbers_are_clipped_to_finite_values():
    """Numbers beyond float32 range are clipped so VW never sees inf."""
    weights = _parsed([context_features({"big": 10**400, "neg": -1e300}), "|a id=x"])[0]
    assert weights[CONTEXT_NS] == [_float32(1e12), _float32(-1e12)]


def test_action_catalog_renders_each_action_once():
    """Actions become cached lines with their id and features in namespace a."""
    catalog = ActionCatalog(
        [{"id": "o1", "features": {"category": "shoes", "discount_pct": 20}}, {"id": "o:2"}]
    )
    assert catalog.line("o1") == "|a id=o1 category=shoes discount_pct:20"
    assert catalog.line("o:2") == "|a id=o%3A2"
    assert catalog.lines() == [catalog.line("o1"), catalog.line("o:2")]
    assert catalog.line("o1") is catalog.line("o1")
    assert catalog.ids == ("o1", "o:2") and len(catalog) == 2 and "o1" in catalog


def test_action_catalog_rejects_duplicate_ids():
    """Two actions with one id are a configuration error."""
    with pytest.raises(ValueError, match="Duplicate"):
        ActionCatalog([{"id": "a"}, {"id": "a"}])


def test_adf_example_labels_the_chosen_action():
    """The label goes in front of the chosen action's line and VW reads it back."""
    lines = adf_example("shared |c a=1", ["|a id=x", "|a id=y"], (1, -1.0, 0.25))
    assert lines == ["shared |c a=1", "|a id=x", "0:-1.0:0.25 |a id=y"]
    vw = _vw()
    examples = vw._parse("\n".join(lines))
    try:
        assert examples[2].get_cbandits_cost(0) == -1.0
        assert examples[2].get_cbandits_probability(0) == 0.25
        assert examples[1].get_cbandits_num_costs() == 0
    finally:
        vw._finish_example_multi_ex(examples)


@pytest.mark.parametrize("label", [(2, -1.0, 0.5), (0, float("nan"), 0.5), (0, 0.0, 0.0)])
def test_adf_example_rejects_bad_labels(label):
    """An out-of-range index, a non-finite cost or a zero probability is refused."""
    with pytest.raises(ValueError):
        adf_example("shared |c", ["|a id=x", "|a id=y"], label)
