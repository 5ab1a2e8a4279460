"""The drf-instcache benchmark harness: ``python -m benchmarks --out results/full``.

One run answers the questions a user has before adopting the library: which backend,
how much faster than plain DRF, and what the library costs over the raw client. It
measures three workloads on every available backend (Memcached, Redis, disk, Django
cache over locmem and over Redis), starting the servers itself on free loopback ports:

1. backend layer (:mod:`benchmarks.backends_layer`): adapter vs raw client;
2. core (:mod:`benchmarks.core_layer`): ``get_instances`` warm per codec, and cold;
3. end to end (:mod:`benchmarks.end_to_end`): the example API under gunicorn and a load
   generator, cached vs plain DRF.

Results go to the folder given with ``--out``: ``results.json`` (machine, versions,
settings, every figure) and one PNG plot per workload; tables are printed on the
terminal. See ``python -m benchmarks --help``.
"""
