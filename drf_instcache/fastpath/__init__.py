"""The fast path: rendered entries (serializer output as JSON bytes) and cached list queries."""
