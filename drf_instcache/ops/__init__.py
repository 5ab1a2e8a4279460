"""Operations: warm, clear, verify and inspect the cache; discovery; the fast-path checks."""
