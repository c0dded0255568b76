"""How a rule runs its script (runner) and the config cross-field checks run after schema validation (config_checks)."""
