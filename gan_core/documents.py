"""Strict parsing of config documents (JSON, TOML, YAML): bounded, unambiguous, plain data.

What every format must give before a config field is looked at:

- a bounded expansion: YAML aliases are resolved by reference, so a 1 kB document of nested
  aliases ("billion laughs") stays small while parsed but becomes gigabytes as soon as anything
  walks it (``from_dict``, ``json.dumps``, an error message's ``repr``). Its size is counted on
  the composed node graph, each alias at its expanded size, before any Python object is built,
  and refused above ``$XRAYGAN_MAX_CONFIG_NODES``; recursive aliases are refused outright;
- a bounded depth (``$XRAYGAN_MAX_CONFIG_DEPTH``), also where the parser itself would recurse;
- no duplicate keys: TOML rejects them, JSON and YAML would keep the last one silently, so
  the value that trains is not the value the reader of the file sees;
- string keys only: YAML allows ``1: x`` or ``[a]: x``, which no config field can be.

Errors are :class:`ConfigError` naming the file (``where``) and, where the parser knows it,
the line; they never contain the document's values beyond a short prefix.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ConfigError
from .lazy import lazy_module
from .safeio import LIMITS

yaml = lazy_module("yaml")

YAML_SUFFIXES = (".yaml", ".yml")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a config may hold")


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(f"duplicate key {key[:60]!r}")
        out[key] = value
    return out


def parse_document(text: str, suffix: str, where: str) -> Any:
    """The plain data (dicts with string keys, lists, scalars) of a JSON/TOML/YAML document."""
    suffix = suffix.lower()
    kind = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}.get(suffix, "JSON")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in YAML_SUFFIXES:
            data = _load_yaml(text, where)
        else:
            data = json.loads(text, parse_constant=_reject_constant,
                              object_pairs_hook=_no_duplicates)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f"{where}: " + LIMITS["config_depth"].exceeded(
            "nested deeper than the parser can follow")) from None
    except _Duplicate as e:
        raise ConfigError(f"{where}: {e}; each key may appear once") from None
    except Exception as e:  # each parser has its own error class; all mean "not valid"
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ConfigError(f"{where} is not valid {kind} ({detail})") from None
    check_tree(data, where)
    return data


def check_tree(data: Any, where: str) -> None:
    """Depth, size and key types of parsed data, walked iteratively (no recursion to exhaust)."""
    max_depth = LIMITS["config_depth"].value()
    max_nodes = LIMITS["config_nodes"].value()
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    nodes = 0
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ConfigError(f"{where}: {LIMITS['config_nodes'].exceeded(f'more than {max_nodes:,} values')}")
        if depth > max_depth:
            raise ConfigError(f"{where}: {path or 'the document'} is "
                              f"{LIMITS['config_depth'].exceeded(f'nested {depth} levels deep')}")
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    shown = repr(key)[:40]
                    raise ConfigError(f"{where}: {path + ': ' if path else ''}key {shown} is of "
                                      f"type {type(key).__name__}; config keys are names (strings)")
                stack.append((child, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            stack.extend((child, depth + 1, path) for child in value)


def _load_yaml(text: str, where: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"{where}: YAML configs need PyYAML (pip install pyyaml); "
                          "or use .json / .toml") from None

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # `<<: *base` then overriding a key is what merges are for
                    key = self.construct_object(key_node, deep=True)
                    try:
                        dup = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: a list or mapping
                        raise ConfigError(f"{where}: line {key_node.start_mark.line + 1}: a "
                                          f"{type(key).__name__} used as a key; config keys are "
                                          "names (strings)") from None
                    if dup:
                        raise ConfigError(f"{where}: line {key_node.start_mark.line + 1}: "
                                          f"duplicate key {str(key)[:60]!r}; each key may "
                                          "appear once")
            return super().construct_mapping(node, deep=deep)

    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_graph(node, where)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_yaml_graph(root: Any, where: str) -> None:
    """Expanded size and depth of a composed YAML graph, counting each shared (aliased) node
    at its full size every time it is referenced, without expanding anything.

    Sizes are memoized per node, so the cost is linear in the document; a node met again on
    the path from the root is a recursive alias.
    """
    max_nodes = LIMITS["config_nodes"].value()
    max_depth = LIMITS["config_depth"].value()
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    # iterative post-order: (node, children pushed?)
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            on_path.discard(key)
            kids = _children(node, yaml)
            size[key] = min(1 + sum(size[id(k)] for k in kids), max_nodes + 1)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > max_nodes:
                line = node.start_mark.line + 1
                raise ConfigError(f"{where}: line {line}: "
                                  + LIMITS["config_nodes"].exceeded(
                                      f"aliases expand to more than {max_nodes:,} values"))
            if depth[key] > max_depth:
                raise ConfigError(f"{where}: line {node.start_mark.line + 1}: "
                                  + LIMITS["config_depth"].exceeded(
                                      f"nested more than {max_depth} levels deep"))
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(f"{where}: line {node.start_mark.line + 1}: a recursive alias "
                              "(a value that contains itself)")
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node, yaml):
            if id(kid) in on_path:
                raise ConfigError(f"{where}: line {kid.start_mark.line + 1}: a recursive alias "
                                  "(a value that contains itself)")
            if id(kid) not in size:
                stack.append((kid, False))
        if len(on_path) > max_depth + 1:
            raise ConfigError(f"{where}: line {node.start_mark.line + 1}: "
                              + LIMITS["config_depth"].exceeded(
                                  f"nested more than {max_depth} levels deep"))


def _children(node: Any, yaml: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
