"""Pydantic representations of SPEC §4, named ``XCreate`` / ``XPublic`` / ``XsPublic``."""
