"""Collections of a Butler repo: existence checks and CHAINED collections (plain strings in and out)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .registry import RepoError, open_butler


def _fresh_butler(butler_config: str, *, writeable: bool = False):
    # Not the cached Butler: collections are created by other processes (BPS jobs) while we run,
    # and a cached registry may keep caches of collection records.
    from lsst.daf.butler import Butler

    try:
        return Butler.from_config(butler_config, writeable=writeable)
    except Exception as exc:
        raise RepoError(f"Cannot open the Butler repo at {butler_config}: {exc}") from exc


def existing_collections(butler_config: str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that exist in the repo (any type), in the given order."""
    from lsst.daf.butler import MissingCollectionError

    wanted = [n for n in names if n]
    if not wanted:
        return []
    # The process's cached Butler (opening one costs ~90 ms, the lookup 0.4 ms): a name its registry
    # has not seen is looked up in the database, so collections that BPS jobs created since are found.
    butler = open_butler(butler_config)
    found = []
    for name in wanted:
        try:
            butler.collections.get_info(name)
        except MissingCollectionError:
            continue
        found.append(name)
    return found


def collection_exists(butler_config: str, name: str) -> bool:
    return bool(existing_collections(butler_config, [name]))


def define_chain(
    butler_config: str, chain_name: str, children: Sequence[str], *, skip_missing: bool = True
) -> list[str]:
    """Create (if needed) the CHAINED collection ``chain_name`` and set its children, in order.

    ``skip_missing`` leaves out children that do not exist (a group accepted without outputs).
    Duplicates are dropped (first occurrence wins). Returns the children actually set.
    Running it again with the same arguments is harmless.
    """
    from lsst.daf.butler import CollectionType, MissingCollectionError

    butler = _fresh_butler(butler_config, writeable=True)
    try:
        ordered: list[str] = []
        for child in children:
            if not child or child in ordered or child == chain_name:
                continue
            if skip_missing:
                try:
                    butler.collections.get_info(child)
                except MissingCollectionError:
                    continue
            ordered.append(child)
        try:
            butler.collections.register(chain_name, CollectionType.CHAINED)
            butler.collections.redefine_chain(chain_name, ordered)
        except Exception as exc:
            raise RepoError(f"Could not define the CHAINED collection {chain_name!r}: {exc}") from exc
        return ordered
    finally:
        butler.close()


def chain_children(butler_config: str, chain_name: str) -> list[str]:
    """The children of a CHAINED collection (empty if it does not exist)."""
    from lsst.daf.butler import MissingCollectionError

    butler = _fresh_butler(butler_config)
    try:
        try:
            return list(butler.collections.get_info(chain_name).children)
        except MissingCollectionError:
            return []
    finally:
        butler.close()


def open_repo_check(butler_config: str) -> None:
    """Raise :class:`RepoError` if the repo cannot be opened."""
    open_butler(butler_config)
