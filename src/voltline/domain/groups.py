"""The load-balancing group tree of a site: which parent a group may hang under.

Each site has one root group (the main fuse, no parent); every other group has exactly one
parent in the same site. Moving a group under itself or one of its descendants would cut
a branch off the tree, so that is refused; the root stays the root.
"""

from __future__ import annotations

from collections.abc import Mapping

from voltline.domain.ids import GroupId

# A site's tree as `group -> parent` (None for the root).
ParentMap = Mapping[GroupId, GroupId | None]


def find_root(parents: ParentMap) -> GroupId | None:
    """The group without a parent (the lowest id if, against the rules, there are several)."""
    roots = sorted(group for group, parent in parents.items() if parent is None)
    return roots[0] if roots else None


def list_descendants(parents: ParentMap, group_id: GroupId) -> set[GroupId]:
    """Every group below `group_id` (children, grandchildren, ...), not the group itself."""
    children: dict[GroupId, list[GroupId]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found: set[GroupId] = set()
    stack = [group_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def is_valid_parent(parents: ParentMap, group_id: GroupId | None, parent_id: GroupId | None) -> bool:
    """May `group_id` (None: a new group) hang under `parent_id` (None: no parent)?"""
    if group_id is not None and group_id in parents and parents[group_id] is None:
        return parent_id is None
    if parent_id is None or parent_id not in parents:
        return False
    if group_id is None:
        return True
    return parent_id != group_id and parent_id not in list_descendants(parents, group_id)
