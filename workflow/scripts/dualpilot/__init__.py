"""dualpilot: pure functions behind the workflow.

Every rule's script in workflow/scripts/ is a thin wrapper that loads its inputs, calls one function of
this package and writes its outputs. Tests import these functions directly.
"""
