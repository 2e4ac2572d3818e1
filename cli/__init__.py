"""The ``lims`` command: the composition root above ``lims``, ``flows`` and ``api`` (it
starts the server and runs the flows, so nothing below it imports it)."""
