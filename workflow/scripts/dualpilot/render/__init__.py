"""Turning estimates into publication output: three-line tables in zh/en (tables), figures (plots) and the
documents a render rule writes (documents)."""
