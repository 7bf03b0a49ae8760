"""Issue 12: segments with speakers on a transcription and a spectrogram computed at ingest."""

from django.db import migrations, models

import reviews.models


class Migration(migrations.Migration):
    dependencies = [("reviews", "0017_project_guidelines")]

    # Clips ingested before this have no spectrogram ({}): the page then shows none, and
    # ``manage.py spectrogram_backfill`` computes it from their stored (disguised) audio.
    operations = [
        migrations.AddField(
            model_name="clip",
            name="spectrogram",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="labelschema",
            name="segment_speakers",
            field=models.TextField(
                blank=True, default="",
                help_text="To ask reviewers for segments (start, end, speaker, optional text), the speakers to "
                          "choose from, one per line (at most 9, e.g. Agent and Customer). Empty: no segments.",
                validators=[reviews.models.segment_speakers_validate]),
        ),
        migrations.AddField(
            model_name="draft",
            name="segments",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="revision",
            name="segments",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="transcription",
            name="segments",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
