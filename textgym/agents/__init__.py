"""Agents and policies that act on textgym's environments."""
