"""Which published Lambda versions a deploy deletes, as a pure choice (no AWS calls).

What holds: after a deploy at most `keep` published versions remain, the newest ones — except
that a version the `live` alias points to or routes traffic to (RoutingConfig) is never deleted,
whatever its age; protected versions count towards `keep`, so only when they alone exceed it do
more than `keep` remain. Why: Lambda's code storage is 75 GB per region and a sklearn-flavor
version is ~60 MB, and every deploy (a failed smoke test too) leaves one; the newest ones are
what `rollback` needs.

`pending` is the number of versions the same deploy is about to publish: they will be the
newest and live, so they take their place in the count before they exist. When unsure whether a
publish creates a version (Lambda returns the existing one when nothing changed), count 0: a
version too many is kept, never one too many deleted.
"""

from __future__ import annotations

from collections.abc import Iterable


def protected_versions(alias: dict | None) -> set[str]:
    """The alias's version and the versions its RoutingConfig sends traffic to."""
    if not alias:
        return set()
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return {str(alias["FunctionVersion"]), *(str(v) for v in weights)}


def versions_to_delete(
    published: Iterable[str], keep: int, protected: Iterable[str] = (), pending: int = 0
) -> list[str]:
    """The versions to delete, oldest first. `published` excludes `$LATEST`."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    numbers = sorted({int(v) for v in published if str(v).isdigit()}, reverse=True)
    guarded = {int(v) for v in protected if str(v).isdigit()} & set(numbers)
    budget = max(keep - pending - len(guarded), 0)
    others = [n for n in numbers if n not in guarded]
    return [str(n) for n in sorted(others[budget:])]
