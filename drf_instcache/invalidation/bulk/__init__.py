"""Bulk writes that invalidate: ``update()``, ``delete()``, ``bulk_update()``, ``bulk_create()``.

Django sends no signal for the first three of those but ``delete()``, which sends one pair
per row. A model opts in once (:mod:`.queryset`); its bulk operations then run, after the
commit and in one batch, what a save or delete of each row runs. The modules: which rows
a bulk delete handles (:mod:`.state`), the
instance and rendered work (:mod:`.instance_jobs`, :mod:`.rendered_jobs`), one operation
(:mod:`.operation`), the queryset (:mod:`.queryset`), raw SQL (:mod:`.raw`), I030
(:mod:`.check`). The public face is :mod:`drf_instcache.bulk`.
"""
