"""Adapters that hand textgym's environments and rewards to other libraries (``trl``: TRL's reward functions)."""
