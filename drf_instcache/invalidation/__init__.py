"""Invalidation: model signals -> after commit -> drop or refresh what changed."""
