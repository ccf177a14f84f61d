"""The one answer to "that name is taken", the same whether or not the user may see what holds it.

Names of campaigns (unique across the service: they name Butler output collections), DataID sets and tag
tables (unique per Butler repo) are shared handles: YAML, the CLI, metrics ingest and `pipetask` refer to
them by name, so they stay unique in their scope rather than per owner. What must not leak is what the
user may not see: so a clash never says who holds the name, whether it is private, or anything about it,
and reads exactly the same for an object the user can see and for one they cannot. (That a name is in use
at all is the one thing a shared name space cannot hide; docs/security.md says so.)
"""

from __future__ import annotations


def name_unavailable(name: str, *, scope: str = "", hint: str = "") -> str:
    """``The name 'x' is not available[ in <scope>]: choose another.`` plus an optional neutral hint."""
    where = f" in {scope}" if scope else ""
    return f"The name {name!r} is not available{where}: choose another." + (f" {hint}" if hint else "")


__all__ = ["name_unavailable"]
