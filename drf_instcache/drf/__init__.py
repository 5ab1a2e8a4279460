"""DRF glue: the view mixin, its fast-path actions and the fast views."""
