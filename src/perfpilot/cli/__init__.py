"""The ``perfpilot`` command: thin glue over the library, one module per sub-command."""
