from django.db import migrations, models


class Migration(migrations.Migration):
    """Spent audio-token nonces: a unique row per play makes each token single-use."""

    dependencies = [("reviews", "0010_audit_chain_key")]

    operations = [
        migrations.CreateModel(
            name="AudioTokenUse",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("nonce", models.CharField(max_length=32, unique=True)),
                ("used_at", models.DateTimeField(db_index=True)),
            ],
        ),
    ]
