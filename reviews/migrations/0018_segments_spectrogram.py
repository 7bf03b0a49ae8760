"""Issue 12: segments with speakers on a transcription and a spectrogram computed at ingest."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("reviews", "0017_project_guidelines")]

    operations = []
