"""Operating the LIMS: backups that restore and verify."""
