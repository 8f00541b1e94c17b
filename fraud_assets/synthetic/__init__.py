"""Synthetic transactions in the ``creditcard.csv`` schema, for the demo, ``fraud generate`` and the tests; not part of the runtime core."""
