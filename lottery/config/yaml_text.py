"""YAML as a config language, safely: ``yaml.safe_load`` plus the limits it lacks. A second ``prune:``
section silently replacing the first, an alias bomb (410 bytes, gigabytes once expanded) and 100,000
nested brackets (``RecursionError``) are each refused with one line instead."""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20  # configs are a few KB; a megabyte is generous
MAX_NODES = 100_000  # values after every alias is expanded
MAX_DEPTH = 64  # nesting of mappings and lists


class YAMLLimit(ValueError):
    """The text is valid YAML but not a reasonable config (duplicate key, too large, too deep)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key given twice in one mapping, and keys that are not names (YAML's
    complex keys, ``? [1, 2]``, are lists or mappings)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) and key is not None:
                line = key_node.start_mark.line + 1
                raise YAMLLimit(f"the key at line {line} is a {type(key).__name__}; config keys are "
                                "names (section.field)")
            if key in seen:
                line = key_node.start_mark.line + 1
                raise YAMLLimit(f"key {key!r} is given twice (again at line {line}); the second would silently "
                                "replace the first, so merge them into one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_size(root: yaml.Node) -> None:
    """Count the nodes as if every alias were expanded (aliases share node objects), without recursion."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, expanded = stack.pop()
        if depth > MAX_DEPTH:
            raise YAMLLimit(f"nested more than {MAX_DEPTH} levels deep; a config is a few levels of sections")
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else (
            list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if not expanded:
            if id(node) in sizes:
                continue
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
        if sizes[id(node)] > MAX_NODES:
            raise YAMLLimit(f"expands to more than {MAX_NODES:,} values (an alias bomb?); a config needs far fewer")


def load_yaml(text: str) -> Any:
    """Parse one YAML document with unique keys and bounded size, depth and alias expansion. Raises
    ``yaml.YAMLError`` (bad syntax) or ``YAMLLimit`` (valid but refused)."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise YAMLLimit(f"is over {MAX_BYTES // 1024} KB; a config is a few KB")
    loader = UniqueKeyLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except RecursionError:
            raise YAMLLimit(f"nested more than {MAX_DEPTH} levels deep; a config is a few levels of sections") from None
        if root is None:
            return None
        _check_size(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()
