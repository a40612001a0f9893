"""Zero-code instrumentation: what ``perfpilot run -- COMMAND`` sets up.

``perfpilot run`` (:mod:`perfpilot.autorun.launch`) puts the ``bootstrap``
directory, which holds a ``sitecustomize.py``, first on ``PYTHONPATH``,
exports the settings as ``PERFPILOT_*`` variables and ``exec``\\ s the command,
so signals reach it and its exit status is the command's own. Every Python
process of the command then activates :mod:`perfpilot.autorun.runtime`: the
libraries are hooked as they are imported (:mod:`~perfpilot.autorun.hooks`,
:mod:`~perfpilot.autorun.importhook`) and the Flask, FastAPI/Starlette and
Django apps are found and wrapped (:mod:`~perfpilot.autorun.frameworks`).

Importing any of these modules changes nothing; only
:func:`perfpilot.autorun.runtime.activate` does, and only when
``PERFPILOT_AUTORUN=1``.
"""
