from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []  # type: ignore[var-annotated]

    operations = [
        migrations.CreateModel(
            name="PendingInvalidation",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("raw_key", models.CharField(blank=True, default="", max_length=1000)),
                ("cache_class", models.CharField(blank=True, default="", max_length=300)),
                ("model_name", models.CharField(blank=True, default="", max_length=100)),
                ("pk_text", models.CharField(blank=True, default="", max_length=300)),
                ("version", models.CharField(blank=True, default="", max_length=100)),
                ("update_only", models.BooleanField(default=False)),
            ],
            options={"db_table": "drf_instcache_pending", "ordering": ("id",)},
        ),
    ]
