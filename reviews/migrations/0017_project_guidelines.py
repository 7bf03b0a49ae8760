from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0016_console_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="guidelines",
            field=models.TextField(
                blank=True, default="",
                help_text="Transcription guidelines shown to this project's reviewers in the workspace, in "
                          "Markdown (headings, lists, emphasis, links). Raw HTML and images are not shown."),
        ),
    ]
