"""Rulesets: the YAML language policy owners write, checked and compiled for the engine.

Data moves one way: `source` (YAML with locations) -> `validator` (checked `model.Ruleset`,
or diagnostics) -> `compiler` (durable_rules JSON). `reference` interprets the same checked
conditions in plain Python; it is the independent check of the engine's answers.
"""
