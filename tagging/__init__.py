"""Butler linkage and human knowledge about data: Butler repos, DataID sets, tag tables, flags."""
