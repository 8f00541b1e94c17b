"""The pure fraud-detection core, grouped by concern; nothing here imports Dagster.

The command line, the HTTP service and the Dagster definitions share this one
implementation, testable on its own. Layers, lowest first: ``storage`` (where bytes live)
and ``data`` (transactions) at the bottom, ``model`` above data, ``monitoring`` on top; a
subpackage imports only those below it.
"""
