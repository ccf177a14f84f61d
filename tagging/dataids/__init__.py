"""Reading, converting and checking data IDs: the machinery behind DataID sets.

- ``readers``: stream raw rows out of JSON, CSV, astropy tables and Butler queries,
  each with where it came from (``line 12`` or ``index 3``).
- ``normalize``: alternate keys to primary keys, then checks against the registry
  (through the repo's mirror tables and the Butler), collecting errors.
"""
