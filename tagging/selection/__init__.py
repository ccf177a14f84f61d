"""The selection builder: a recipe (JSON) of include/exclude terms over a Butler repo's data IDs,
compiled to one SQL query over the registry mirror, counted live, sampled reproducibly and frozen
into a DataID set whose provenance records the recipe.

- ``recipe``: the recipe's shape, validated with errors that name the path of the bad key.
- ``condition``: the condition language on tag-table columns.
- ``compile``: recipe -> SQL (where expressions, DataID sets, tag tables, flags, bad data, sampling).
- ``services``: count/preview, freeze, re-run and diff.
"""
