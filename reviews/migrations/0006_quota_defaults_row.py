from django.db import migrations


def create_defaults(apps, schema_editor):
    QuotaDefaults = apps.get_model("reviews", "QuotaDefaults")
    if not QuotaDefaults.objects.exists():
        QuotaDefaults.objects.create()


class Migration(migrations.Migration):
    dependencies = [("reviews", "0005_audit_append_only")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
