"""Extrinsic scorers: sentiment, toxicity, summary quality, and any transformers classifier."""
