"""Tests of the CPO simulator."""
