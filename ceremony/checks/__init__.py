"""Checks that produce findings: certificate profile checks now, compliance controls later."""
