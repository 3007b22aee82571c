"""Tests of the frame loop on real footage."""
