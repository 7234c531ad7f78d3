"""The zoo on disk: store, typed records, the reference grammar, cards, named styles, families."""
