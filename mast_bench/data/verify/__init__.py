"""Listing a dataset copy (:mod:`.listing`) and checking it against official numbers (:mod:`.check`)."""
