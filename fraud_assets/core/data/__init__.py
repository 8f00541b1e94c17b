"""Transactions: the schema and its validation, table readers and writers, splits, features and feature profiles. Imports ``storage`` only."""
