from django.db import migrations, models

import reviews.models


class Migration(migrations.Migration):
    """Preset skip reasons per project, so a skip is one keypress instead of typed text."""

    dependencies = [("reviews", "0011_audio_token_nonce")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="skip_reasons",
            field=models.TextField(
                blank=True, default="Cannot hear clearly\nNot speech\nWrong language",
                help_text='Preset reasons offered when a reviewer skips a clip, one per line (at most 8). '
                          'The page always adds "Other" with free text.',
                validators=[reviews.models.skip_reasons_validate]),
        ),
    ]
