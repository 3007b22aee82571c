"""Tests of the rules on synthetic tracks."""
