"""YAML that a caller wrote: parsed so that a few hundred bytes cannot cost gigabytes.

A YAML alias (*name) makes a document a graph: nine lines of nested aliases stand for
hundreds of millions of values, and anything that walks the result (a repr in an error
message, a log line, json.dumps) pays for all of them. function.yaml and faas.yaml are a
handful of flat settings with no use for aliases, so they are refused there. SAM templates
are written for other tools too and do use anchors now and then (`<<: *defaults`), so there
they are accepted as long as the document written out in full stays within
MAX_EXPANDED_NODES. Integers over Python's digit limit become a YAML error with a line
number rather than a ValueError from deep inside the constructor.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

# Nodes of a SAM template once every alias is written out; a large real template has a few
# thousand, a billion-laughs document billions.
MAX_EXPANDED_NODES = 200_000


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader whose too-long integers are a located YAML error, not a ValueError."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:  # type: ignore[override]
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            digits = sys.get_int_max_str_digits()
            raise ConstructorError(
                None, None, f"an integer of {len(str(node.value))} characters is over the {digits}-digit limit", node.start_mark
            ) from None


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)


class NoAliasLoader(SafeLoader):
    """SafeLoader that refuses aliases, where the alias is."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ComposerError(
                None, None, "found an alias (*name): anchors and aliases are not accepted here; write the value out", mark
            )
        return super().compose_node(parent, index)  # type: ignore[no-untyped-call, arg-type]


def expanded_nodes(root: yaml.Node, limit: int) -> int:
    """How many nodes the document has with every alias written out, counted without
    writing them out (each shared node is counted once and its count reused); stops past limit."""
    counts: dict[int, int] = {}

    def count(node: yaml.Node) -> int:
        known = counts.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += count(child)
                if total > limit:
                    break
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                total += count(key) + count(value)
                if total > limit:
                    break
        counts[id(node)] = total
        return total

    return count(root)


def load_document(text: str, loader: type[SafeLoader], *, max_expanded: int = MAX_EXPANDED_NODES) -> Any:
    """One YAML document, refused (a YAMLError) if it stands for more than max_expanded nodes."""
    ld = loader(text)
    try:
        node = ld.get_single_node()
        if node is None:
            return None
        size = expanded_nodes(node, max_expanded)
        if size > max_expanded:
            raise ComposerError(
                None,
                None,
                f"the document stands for more than {max_expanded} values once its aliases are written out; "
                "refused (a YAML alias bomb?)",
                node.start_mark,
            )
        return ld.construct_document(node)
    finally:
        ld.dispose()


def load_settings(text: str) -> Any:
    """A settings file (function.yaml, faas.yaml): no aliases, located errors."""
    return load_document(text, NoAliasLoader)
