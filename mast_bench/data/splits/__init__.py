"""Validation splits: pure seeded rules (:mod:`.seeded`) and committed split files (:mod:`.files`)."""
