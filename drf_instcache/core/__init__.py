"""The strategy core: cache classes, the read-through/store flow, entries, counters."""
